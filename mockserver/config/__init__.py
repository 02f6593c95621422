"""The mock's configuration (contract 3): one declaration per setting (`settings`), loaded from
defaults, a TOML file, the environment and flags (`loader`); the password-hash scheme."""

from mockserver.config.checks import ConfigError
from mockserver.config.faults import ENV_FAULTS
from mockserver.config.loader import ENV_ACCOUNTS, ENV_CONFIG_FILE, ENV_RESERVED, load_config
from mockserver.config.passwords import (
    compare_plain,
    hash_password,
    valid_password_hash,
    verify_password,
)
from mockserver.config.pricing import ENV_PRICING, QUALITIES
from mockserver.config.settings import (
    ENV_PREFIX,
    SCHEMA,
    SETTINGS,
    AccountConfig,
    Config,
    Flag,
    LimitsConfig,
    LogConfig,
    LogFormat,
    LogLevel,
    MailConfig,
    ProcessingConfig,
    ServerConfig,
    Setting,
    WatchMode,
    add_flags,
    dotted_key,
    flag_overrides,
)

__all__ = [
    "ENV_ACCOUNTS",
    "ENV_CONFIG_FILE",
    "ENV_FAULTS",
    "ENV_PREFIX",
    "ENV_PRICING",
    "ENV_RESERVED",
    "QUALITIES",
    "SCHEMA",
    "SETTINGS",
    "AccountConfig",
    "Config",
    "ConfigError",
    "Flag",
    "LimitsConfig",
    "LogConfig",
    "LogFormat",
    "LogLevel",
    "MailConfig",
    "ProcessingConfig",
    "ServerConfig",
    "Setting",
    "WatchMode",
    "add_flags",
    "compare_plain",
    "dotted_key",
    "flag_overrides",
    "hash_password",
    "load_config",
    "valid_password_hash",
    "verify_password",
]
