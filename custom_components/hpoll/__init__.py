"""hpoll: watch over a Philips Hue home through the Hue Remote API."""
