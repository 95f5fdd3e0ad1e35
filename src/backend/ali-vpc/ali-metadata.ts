/** Client for the ECS metadata service (`/latest/meta-data/...`): region, instance and VPC of this host. */
import { WeftError } from '../../errors.ts'
import type { Clock } from '../../util/clock.ts'
import type { Logger } from '../../log/logger.ts'
import { withRetry, type RetryPolicy } from '../cloud/retry.ts'
import { isRetryableStatus } from '../cloud/cloud-error.ts'

export const ALI_METADATA_DEFAULT = 'http://100.100.100.200'

export interface AliSelf {
  readonly regionId: string
  readonly instanceId: string
  readonly vpcId: string
}

export interface AliMetadataDeps {
  readonly clock: Clock
  readonly logger: Logger
  readonly timeoutMs?: number
  readonly retryPolicy?: RetryPolicy
}

export class AliMetadata {
  constructor(readonly baseUrl: string, private readonly deps: AliMetadataDeps) {}

  async self(signal: AbortSignal): Promise<AliSelf> {
    const [regionId, instanceId, vpcId] = await Promise.all([this.get('region-id', signal), this.get('instance-id', signal), this.get('vpc-id', signal)])
    return { regionId, instanceId, vpcId }
  }

  /** GET one value; retries resets and 5xx a few times, then fails naming the endpoint. */
  async get(key: string, signal: AbortSignal): Promise<string> {
    const url = `${this.baseUrl}/latest/meta-data/${key}`
    try {
      return await withRetry(() => this.fetchOnce(url, key, signal), { clock: this.deps.clock, logger: this.deps.logger }, {
        what: `metadata ${key}`,
        policy: this.deps.retryPolicy ?? { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 1_000 },
        signal,
        isRetryable: (err) => (err instanceof WeftError ? isRetryableStatus(err.details['status'] as number | undefined) : true),
      })
    } catch (err) {
      if (signal.aborted) throw signal.reason
      if (err instanceof WeftError) throw err
      const cause = (err as { cause?: Error }).cause
      const reason = (err as Error).name === 'TimeoutError' ? 'timed out' : (cause?.message ?? (err as Error).message)
      throw new WeftError('CLOUD_API_FAILED', `alibaba metadata service unreachable at ${this.baseUrl} (${reason}); the ali-vpc backend must run on an ECS instance in a VPC, or set Backend.MetadataEndpoint`, {
        details: { key, endpoint: this.baseUrl }, cause: err,
      })
    }
  }

  private async fetchOnce(url: string, key: string, signal: AbortSignal): Promise<string> {
    const res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(this.deps.timeoutMs ?? 3_000)]) })
    const text = (await res.text()).trim()
    if (!res.ok) {
      throw new WeftError('CLOUD_API_FAILED', `alibaba metadata ${key}: HTTP ${res.status} from ${this.baseUrl}`, { details: { key, status: res.status } })
    }
    if (text === '') throw new WeftError('CLOUD_API_FAILED', `alibaba metadata ${key}: empty value from ${this.baseUrl}`, { details: { key } })
    return text
  }
}
