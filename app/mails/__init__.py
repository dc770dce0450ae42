"""Mails: the outbox written with the step that sends them, delivered by a Celery task over SMTP."""
