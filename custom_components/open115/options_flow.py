"""Options flow for open115: the refresh margin, in whole seconds, within what takes effect."""

from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigFlowResult, OptionsFlowWithReload
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
)
import voluptuous as vol

from .const import (
    CONF_EXPIRES_IN,
    CONF_REFRESH_MARGIN,
    DEFAULT_REFRESH_MARGIN,
    MAX_REFRESH_MARGIN,
    MIN_REFRESH_MARGIN,
)

# The range is checked in the step, not by the selector: the selector's own refusal ("Value 30.0
# is too small") names neither the range nor the unit.
MARGIN_SELECTOR = NumberSelector(
    NumberSelectorConfig(step=1, unit_of_measurement="s", mode=NumberSelectorMode.BOX)
)


def max_refresh_margin(entry: ConfigEntry) -> int:
    """The largest margin that takes effect: the keeper caps it at a quarter of the lifetime."""
    lifetime = int(entry.data.get(CONF_EXPIRES_IN) or 0)
    if lifetime <= 0:
        return MAX_REFRESH_MARGIN
    return max(MIN_REFRESH_MARGIN, min(MAX_REFRESH_MARGIN, lifetime // 4))


class Open115OptionsFlow(OptionsFlowWithReload):
    """The refresh margin."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask how long before expiry a refresh starts; refuse what would be capped."""
        errors: dict[str, str] = {}
        highest = max_refresh_margin(self.config_entry)
        if user_input is not None:
            value = float(user_input[CONF_REFRESH_MARGIN])
            if not value.is_integer() or not MIN_REFRESH_MARGIN <= value <= highest:
                errors[CONF_REFRESH_MARGIN] = "margin_out_of_range"
            else:
                return self.async_create_entry(data={CONF_REFRESH_MARGIN: int(value)})
        stored = int(self.config_entry.options.get(CONF_REFRESH_MARGIN, DEFAULT_REFRESH_MARGIN))
        # The value in effect (a stored one above today's cap is capped by the keeper).
        schema = vol.Schema(
            {vol.Required(CONF_REFRESH_MARGIN, default=min(stored, highest)): MARGIN_SELECTOR}
        )
        return self.async_show_form(
            step_id="init",
            # After an error the field keeps what was typed.
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
            description_placeholders={"min": str(MIN_REFRESH_MARGIN), "max": str(highest)},
        )
