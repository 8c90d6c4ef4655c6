"""Home Assistant custom integrations (HACS installs only custom_components/hpoll)."""
