"""The prior network: a residual fully-connected net with one sigmoid output per class.

As in Mac Aodha et al. (2019): ``input -> Linear(width) -> ReLU``, then ``blocks`` residual
blocks ``h + ReLU(Linear(Dropout(ReLU(Linear(h)))))``, then a linear class head. A separate,
optional user head (photographer embeddings) is used only by the training loss.
"""

from __future__ import annotations

from torch import Tensor, nn

from geoaware.priors.config import PriorConfig

__all__ = ["PriorNet", "ResidualBlock"]


class ResidualBlock(nn.Module):
    """``h + ReLU(W2 Dropout(ReLU(W1 h)))``.

    Examples
    --------
    >>> import torch
    >>> ResidualBlock(8, 0.0)(torch.zeros(2, 8)).shape
    torch.Size([2, 8])
    """

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(width, width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(width, width),
            nn.ReLU(inplace=True),
        )

    def forward(self, h: Tensor) -> Tensor:
        """Apply the block."""
        out: Tensor = h + self.net(h)
        return out


class PriorNet(nn.Module):
    """Location (and date) features in, one logit per class out.

    Parameters
    ----------
    config
        Gives the input width, the width, the number of blocks and the dropout.
    n_classes
        Output classes.
    n_users
        Photographer embeddings to learn (0: none).

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> net = PriorNet(PriorConfig(width=16, blocks=2), n_classes=3)
    >>> net(torch.zeros(5, 4)).shape
    torch.Size([5, 3])
    """

    def __init__(self, config: PriorConfig, n_classes: int, n_users: int = 0) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Linear(config.input_dim, config.width),
            nn.ReLU(inplace=True),
            *(ResidualBlock(config.width, config.dropout) for _ in range(config.blocks)),
        )
        self.head = nn.Linear(config.width, n_classes)
        self.user_head = nn.Linear(config.width, n_users, bias=False) if n_users else None

    def embed(self, x: Tensor) -> Tensor:
        """Return the location embedding (the trunk's output), shape ``(n, width)``."""
        out: Tensor = self.trunk(x)
        return out

    def class_logits(self, h: Tensor, classes: Tensor | None = None) -> Tensor:
        """Return the logits of all classes ``(n, C)``, or of one class per row ``(n,)``.

        Examples
        --------
        >>> import torch
        >>> net = PriorNet(PriorConfig(width=4, blocks=0), n_classes=3)
        >>> h = torch.ones(2, 4)
        >>> full = net.class_logits(h)
        >>> picked = net.class_logits(h, torch.tensor([2, 0]))
        >>> bool(torch.allclose(picked, full[[0, 1], [2, 0]]))
        True
        """
        if classes is None:
            out: Tensor = self.head(h)
            return out
        w = self.head.weight[classes]
        return (h * w).sum(dim=1) + self.head.bias[classes]

    def forward(self, x: Tensor) -> Tensor:
        """Return the class logits for inputs ``x``, shape ``(n, C)``."""
        return self.class_logits(self.embed(x))
