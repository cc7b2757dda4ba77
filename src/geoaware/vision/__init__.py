"""Images to vectors: fast JPEG decoding, pretrained encoders and the embeddings file.

The embeddings file is the second contract between stages (see the design notes): Parquet
with ``image_id`` and one fixed-size list column ``embedding``, the encoder's name, version and
preprocessing in the file's metadata. :mod:`~geoaware.vision.embeddings` reads and writes it;
torch and the encoders are imported only by the modules that need them.
"""

from typing import TYPE_CHECKING

from geoaware.lazy import lazy_exports

if TYPE_CHECKING:  # the names load on first use (geoaware --help stays fast)
    from geoaware.vision.embeddings import (
        EmbeddingInfo as EmbeddingInfo,
    )
    from geoaware.vision.embeddings import (
        Embeddings as Embeddings,
    )
    from geoaware.vision.embeddings import (
        read_embeddings as read_embeddings,
    )
    from geoaware.vision.embeddings import (
        write_embeddings as write_embeddings,
    )

_EXPORTS = dict.fromkeys(
    ("EmbeddingInfo", "Embeddings", "read_embeddings", "write_embeddings"), "embeddings"
)
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
