"""Small protocol endpoints the lab runs where Debian has no light-weight server or client (IMAP, SIP/RTP, WebSocket)."""
