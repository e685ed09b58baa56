"""Configuration: TOML plus environment, validated once at start-up."""

from gateway.config.loader import ConfigError, load_settings
from gateway.config.settings import GatewaySettings

__all__ = ["ConfigError", "GatewaySettings", "load_settings"]
