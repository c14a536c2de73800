"""Email to people: approval requests to the approvers on call, escalations of emergencies,
administrators' notices. Messages are written to an outbox in the transaction of the change
(:mod:`bulletin.notify.outbox`) and sent by a daemon job (:mod:`bulletin.notify.send`)."""
