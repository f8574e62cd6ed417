"""Languages: the Ethiopian calendar (ethiopian.py). The pages' catalogs are static/i18n/*.json,
the emails' are the per-language template folders of astegni/notifications/templates."""
