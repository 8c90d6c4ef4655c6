"""The caregivers' dashboard: pages (views, templates, static files), sign-in and sessions
(accounts, security) and the reads behind the pages (queries, usual)."""
