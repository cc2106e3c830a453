"""Transactional outbox: domain events written with the change they describe, consumed by workers."""
