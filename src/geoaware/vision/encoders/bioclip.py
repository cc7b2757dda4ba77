"""BioCLIP (Stevens et al., CVPR 2024): a CLIP for the tree of life, through OpenCLIP.

``load_encoder("bioclip")`` loads ``hf-hub:imageomics/bioclip`` (needs
``pip install open_clip_torch`` and the model from the Hugging Face Hub, downloaded once and
cached by ``huggingface_hub``). Its text tower takes taxonomic names
(``"a photo of Danaus plexippus"``).
"""

from __future__ import annotations

from geoaware.vision.encoders.openclip import OpenClipEncoder, import_open_clip

__all__ = ["BIOCLIP_HUB", "load_bioclip"]

BIOCLIP_HUB = "hf-hub:imageomics/bioclip"


def load_bioclip(device: str | None = None) -> OpenClipEncoder:
    """Load BioCLIP as an image-text encoder named ``bioclip``.

    Examples
    --------
    >>> enc = load_bioclip()  # doctest: +SKIP
    >>> enc.dim  # doctest: +SKIP
    512
    """
    import_open_clip()  # a clear error before anything else when open_clip is missing
    return OpenClipEncoder(BIOCLIP_HUB, None, name="bioclip", device=device)
