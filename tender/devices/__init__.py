"""Host side of guest attachments: block images and taps."""
