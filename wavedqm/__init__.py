"""wavedqm: real-time data-quality monitoring for particle-detector waveform data."""

__version__ = "0.1.0"
