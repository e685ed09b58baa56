"""Field-bus drivers. Importing this package registers every built-in driver."""

from drivers import modbus as modbus  # registers "modbus" (and the deprecated "modbus_tcp")
from drivers import opcua as opcua  # registers "opcua"
from drivers import scanner as scanner  # registers "scanner"
from drivers.base import DeviceConfig, Driver, PointInfo, Publisher, ServiceDriver, WriteError

__all__ = ["DeviceConfig", "Driver", "PointInfo", "Publisher", "ServiceDriver", "WriteError"]
