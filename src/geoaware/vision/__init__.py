"""Images to vectors: fast JPEG decoding, pretrained encoders and the embeddings file.

The embeddings file is the second contract between stages (see the design notes): Parquet
with ``image_id`` and one fixed-size list column ``embedding``, the encoder's name, version and
preprocessing in the file's metadata. :mod:`~geoaware.vision.embeddings` reads and writes it;
torch and the encoders are imported only by the modules that need them.
"""

from geoaware.vision.embeddings import EmbeddingInfo, Embeddings, read_embeddings, write_embeddings

__all__ = ["EmbeddingInfo", "Embeddings", "read_embeddings", "write_embeddings"]
