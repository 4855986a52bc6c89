"""Sudo errors."""

from runtime.frame import ModuleErrors
from runtime.pallets.indices import SUDO

ERRORS = ModuleErrors(SUDO, "Sudo", ["RequireSudo"], {"RequireSudo": "Sender must be the Sudo account."})
