"""The node service: the Sequencer on its own thread, its intake queue, read path and event bus
(``service``), the stream producer (``bus``), JSON views of the state (``views``), dead-man
switches (``safety``) and the L1 worker (``l1``)."""

from .service import NodeHalted, NodeOverloaded, NodeService

__all__ = ["NodeHalted", "NodeOverloaded", "NodeService"]
