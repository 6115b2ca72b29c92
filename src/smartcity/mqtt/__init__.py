"""MQTT in the platform: the embedded listener of the default mode."""
