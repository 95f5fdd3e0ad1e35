/**
 * Runs the EC2 + IMDS emulator as its own process (e.g. inside a test network namespace, where
 * the test process cannot listen). Usage: `node --import tsx serve.ts '<seed json>'`.
 * Prints one JSON line `{"ready":…}` with the URL and ids, then one `{"call":…}` line per EC2
 * call; exits on SIGTERM.
 */
import { startEc2Emulator } from './ec2-emulator.ts'
import { Ec2State } from './ec2-state.ts'

interface Seed {
  /** Private IPs of the instance's ENIs, one list per ENI. */
  readonly enis: string[][]
  readonly region?: string
  /** Associate a table with the instance's subnet (else only the main table exists). */
  readonly subnetTable?: boolean
}

const seed = JSON.parse(process.argv[2] ?? '{"enis":[["172.31.1.10"]]}') as Seed
const state = new Ec2State()
const subnetId = state.addSubnet()
const instance = state.addInstance(subnetId, ...seed.enis)
const main = state.addTable({ main: true })
const table = seed.subnetTable === false ? undefined : state.addTable({ subnetIds: [subnetId] })
const emu = await startEc2Emulator(state, {
  onCall: (call) => process.stdout.write(JSON.stringify({ call: { action: call.action, status: call.status, errorCode: call.errorCode, params: call.params } }) + '\n'),
})
emu.identity = { region: seed.region ?? 'us-east-1', instanceId: instance.id }
process.stdout.write(JSON.stringify({ ready: { url: emu.url, instanceId: instance.id, eniIds: instance.eniIds, mainTableId: main.id, tableId: table?.id, subnetId } }) + '\n')
process.once('SIGTERM', () => void emu.close().then(() => process.exit(0)))
