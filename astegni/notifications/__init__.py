"""Email notifications: a transactional outbox (email_outbox, email_enqueue) filled
in the transactions of the events, and a sender task in each server process that claims due
rows and mails them (docs/notifications.md).

- outbox.py: the claim and outcomes of outbox rows, the digest scan, the operator's CLI;
- sender.py: the lifespan task;
- transport.py: SMTP (SMTP_URL) or .eml files;
- render.py and templates/: each email in the recipient's language;
- router.py, models.py, service.py: GET/PUT /api/me/notifications (the preferences).
"""

# Every kind of email, as email_outbox.kind and the keys of /api/me/notifications.
KINDS = (
    "request_created",
    "request_accepted",
    "request_rejected",
    "request_cancelled",
    "request_expired",
    "chat_digest",
)
