"""What each settings key means, as the form and the saved file's comments say it."""

from __future__ import annotations

SETTING_DESCRIPTIONS: dict[str, str] = {
    "task.run_on_schedule": (
        "Run the Order data export task automatically according to the configured schedule, "
        "or disable it to allow only manual start of the task."
    ),
    "task.run_interval_minutes": (
        "The time interval in minutes when the task should run automatically (0 when run time "
        "is used)."
    ),
    "task.run_time": (
        "The fixed time (HH:MM, server time) when the task should run automatically once a day "
        '("" when the interval is used).'
    ),
    "task.send_email_on_failure": (
        "E-mail the webstore administrator when the task fails: the task, the webstore, when it "
        "failed and the error message."
    ),
    "task.max_archived_log_files": (
        "The maximum number of log files to store; when exceeded, the oldest log file is removed."
    ),
    "task.batch_size": "The quantity of orders that should be handled in one batch.",
    "task.max_days_to_export": (
        "The maximum number of days to export sales orders from the ERP system; older orders are "
        "neither exported nor re-checked."
    ),
    "task.max_retry_interval_seconds": (
        "The maximum interval between retries (seconds): all retries of one item happen within "
        "this interval."
    ),
    "task.max_retries": "The maximum retries count within the retry interval.",
    "task.max_items_to_skip": (
        "How many sales orders can be skipped in one run before the task fails."
    ),
    "task.request_timeout_seconds": (
        "How long (seconds) one request to the ERP or the marketing platform may wait for its "
        "answer before it counts as failed (and is retried); connecting gets at most 10 s."
    ),
    "webstore.name": "The webstore's name, shown in failure e-mails and on the dashboard.",
    "erp.source": 'Where orders come from: "demo" (embedded SQLite ERP) or "business_central".',
    "erp.demo_database": "The embedded demo ERP's SQLite database file.",
    "erp.business_central.base_url": (
        "Business Central API v2.0 base URL, e.g. "
        "https://api.businesscentral.dynamics.com/v2.0/<tenant>/<environment>/api/v2.0"
    ),
    "erp.business_central.company_id": "The Business Central company's id.",
    "erp.business_central.tenant_id": "The Microsoft Entra tenant id of the Business Central.",
    "erp.business_central.client_id": "The app registration's client id.",
    "erp.business_central.client_secret_env": (
        "Name of the environment variable that holds the client secret."
    ),
    "erp.business_central.token_url": (
        'OAuth token URL; "" uses the Microsoft identity platform token URL for the tenant.'
    ),
    "erp.business_central.shipment_tracking_field": (
        "A salesShipments field holding the package tracking number, added by an API extension "
        '(e.g. "packageTrackingNo"); "" when Business Central holds none.'
    ),
    "erp.business_central.shipment_tracking_api": (
        "The route (publisher/group/version) of the custom API page whose salesShipments carry "
        'that field, e.g. "contoso/shipping/v1.0"; "" reads it from the standard API v2.0.'
    ),
    "erp.business_central.tracking_url_template": (
        "The tracking URL, with {tracking_number} where the number goes (e.g. "
        '"https://www.dhl.com/track?id={tracking_number}"); "" for no URL.'
    ),
    "destination.app": (
        'Where orders go: "dotdigital", "mailchimp" or "file" (dry run: writes the exact '
        "request bodies)."
    ),
    "dotdigital.region": "Dotdigital region: r1 Europe, r2 North America, r3 Asia Pacific.",
    "dotdigital.base_url": 'Overrides https://<region>-api.dotdigital.com ("" for the default).',
    "dotdigital.api_user": "The Dotdigital API user (HTTP Basic auth user name).",
    "dotdigital.password_env": (
        "Name of the environment variable that holds the API user's password."
    ),
    "dotdigital.collection": "The Insight data collection that holds the orders.",
    "dotdigital.create_missing_contacts": (
        "Create a Dotdigital contact for an order whose e-mail address is not a contact yet."
    ),
    "dotdigital.contact_list_id": (
        "The list that contacts created for orders join (0: none). Joining a list is not "
        "consent to marketing: pick a list that is not sent campaigns."
    ),
    "dotdigital.import_timeout_seconds": (
        "How long (seconds) a run waits for Dotdigital to finish one bulk import before it "
        "fails; the import is polled less often the longer it takes."
    ),
    "mailchimp.api_key_env": (
        "Name of the environment variable that holds the API key (its -usN suffix selects the "
        "data centre)."
    ),
    "mailchimp.base_url": 'Overrides https://<dc>.api.mailchimp.com/3.0 ("" for the default).',
    "mailchimp.store_id": "The Mailchimp e-commerce store id.",
    "mailchimp.list_id": "The audience that the store is connected to.",
    "mailchimp.max_connections": (
        "Simultaneous connections to Mailchimp (it allows 10 per API key)."
    ),
    "file.path": "The JSON Lines file the file destination (dry run) writes request bodies to.",
    "email.smtp_host": "The SMTP server that sends failure e-mails.",
    "email.smtp_port": "The SMTP server's port.",
    "email.security": 'SMTP connection security: "none", "starttls" or "tls".',
    "email.username": 'SMTP user name ("" sends without logging in).',
    "email.password_env": "Name of the environment variable that holds the SMTP password.",
    "email.sender": "The failure e-mail's From address.",
    "email.to": "The administrators' e-mail addresses that receive failure e-mails.",
    "webhook.enabled": (
        "Accept real-time orders and payment statuses from the webstore (on once the webstore "
        "has the shared secret)."
    ),
    "webhook.listen": 'The address the webhook intake listens on, "host:port" ("[::1]:8787").',
    "webhook.secret_env": (
        "Name of the environment variable that holds the webhook's shared HMAC secret."
    ),
    "webhook.scheme": (
        'How requests are signed: "x-signature" (HMAC of the body) or "standard-webhooks" '
        "(signed id and timestamp: a captured request cannot be replayed later)."
    ),
    "webhook.tolerance_seconds": (
        "standard-webhooks: a request whose timestamp is further than this from now is refused."
    ),
    "monitoring.listen": (
        'Where GET /healthz and GET /metrics are served, "host:port" (e.g. "127.0.0.1:9187"); '
        '"" turns monitoring off.'
    ),
    "storage.state_database": "The state database (SQLite) that remembers what was exported.",
    "storage.logs_dir": "The folder that holds the per-run log files.",
    "storage.control_socket": (
        "The Unix socket (mode 0600) on which the running daemon or dashboard is steered."
    ),
}

# What each table is for: the comment above its header in the saved file.
TABLE_DESCRIPTIONS: dict[str, str] = {
    "task": "The Order data export task, as the webstore admin knows it.",
    "webstore": "The webstore whose orders are exported.",
    "erp": "The ERP system that the orders are read from.",
    "erp.business_central": (
        'Microsoft Dynamics 365 Business Central API v2.0 (erp.source = "business_central").'
    ),
    "destination": "The marketing platform that the orders are sent to.",
    "dotdigital": 'Dotdigital Insight data (destination.app = "dotdigital").',
    "mailchimp": 'A Mailchimp e-commerce store (destination.app = "mailchimp").',
    "file": 'The dry run (destination.app = "file").',
    "email": "The failure e-mail (task.send_email_on_failure = true).",
    "webhook": "Real-time orders and payment statuses from the webstore.",
    "monitoring": "Health and metrics for monitoring tools.",
    "storage": "What order-export keeps on disk.",
}
