"""Image geolocation: from an image embedding to a place on Earth.

Methods share one small interface (:class:`~geoaware.geolocate.base.Geolocator`): fitted on
gallery or training embeddings with their coordinates, saved as a model folder (weights plus
``config.json``), and predicting a point and ranked candidate places per query vector. The
predictions file they write is the one ``geoaware eval geo`` reads.
"""
