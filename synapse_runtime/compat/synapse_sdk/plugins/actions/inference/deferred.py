from synapse_runtime.serve.deferred import (
    TicketStore, extract_ticket, failed_envelope, is_poll_request, not_found_envelope, pending_envelope,
)

__all__ = ["TicketStore", "extract_ticket", "failed_envelope", "is_poll_request", "not_found_envelope",
           "pending_envelope"]
