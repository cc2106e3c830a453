"""Chat network transports: each module adapts one network to `omnizap.chat.messages.Transport`."""
