"""The claim/lease/backoff/dead-letter protocol of the task queue, the outbox and the reprocess queue."""
