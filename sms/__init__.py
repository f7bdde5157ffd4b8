"""SMS gateway core: message grammar, GSM-7/UCS-2 encoding and phone numbers."""
