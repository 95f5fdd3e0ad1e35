/**
 * Registry entry for aws-vpc: the option parser is eager and tiny; the backend (and with it
 * the AWS SDK) loads only when a network actually uses aws-vpc.
 */
import type { BackendDefinition } from '../backend.ts'
import { parseAwsVpcOptions } from './aws-vpc-options.ts'
import type { AwsVpcOptions } from './aws-vpc-options.ts'

export const awsVpcDefinition: BackendDefinition<AwsVpcOptions> = {
  type: 'aws-vpc',
  parseOptions: parseAwsVpcOptions,
  load: async () => (await import('./aws-vpc.ts')).awsVpc,
}
