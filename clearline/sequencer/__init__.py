"""Sequencer: intake, parallel signature verification, ordering, journaling, recovery."""

from .node import Ack, Sequencer
from .recovery import recover_state, replay
from .verify import Verifier

__all__ = ["Ack", "Sequencer", "Verifier", "recover_state", "replay"]
