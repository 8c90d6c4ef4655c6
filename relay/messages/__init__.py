"""What caregivers read: message documents, their words, and their formats."""
