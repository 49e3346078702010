"""hhsym: learn Hodgkin-Huxley rate functions from V(t) and I(t), as equations.

The public API is listed explicitly below; submodules are implementation.
"""

from hhsym.errors import HHSymError

__all__ = ["HHSymError"]
__version__ = "0.1.0"
