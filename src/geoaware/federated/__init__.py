"""Federated learning on geoaware partitions: the Flower adapter and a FedAvg simulation.

:mod:`~geoaware.federated.partitioner` hands a partition file (written by
:mod:`geoaware.construct.partition`) to ``flwr_datasets``; :mod:`~geoaware.federated.simulate`
runs FedAvg with Flower's simulation engine beside centralised training. Heavy optional
dependencies (``flwr``, ``flwr_datasets``, ``ray``) are imported only inside these modules'
functions.
"""

from __future__ import annotations
