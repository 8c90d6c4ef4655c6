"""hpoll relay: collects reports from many homes and tells caregivers what they need to know."""

__version__ = "0.2.0"
