import { ConfigError, type ErrorCode } from '../errors.ts'

/**
 * A ConfigError whose message is written out in full, for messages that keep flannel's
 * wording and already name the field ("SubnetMin is not in the range of the Network: ..."),
 * where the usual `field: rule` prefix would repeat it.
 */
export class FieldError extends ConfigError {
  constructor(field: string, message: string, options: { code?: ErrorCode } = {}) {
    super(field, message, options)
    this.message = message
  }
}
