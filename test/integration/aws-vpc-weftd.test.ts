/**
 * weftd with Backend.Type aws-vpc, as a process: etcd, the EC2/IMDS emulator and weftd run in
 * a throwaway network namespace (lo + a veth pair, no route out). The bundled daemon loads
 * the aws-vpc chunk and the real SDK, and programs the emulator's route table; a restart
 * leaves the correct route alone.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createScratchNetns, needsRoot } from '../helpers/scratch-netns.ts'
import { nsSpawn } from '../helpers/netns.ts'
import type { NsProcess } from '../helpers/netns.ts'
import { startEtcd } from '../helpers/etcd-server.ts'
import { REPO, WEFTD, eventually } from '../helpers/weftd.ts'
import { TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY } from '../emulators/ec2/ec2-emulator.ts'

interface Ready { url: string; instanceId: string; eniIds: string[]; tableId: string }
interface Call { action: string; status: number; params: Record<string, string> }

test('weftd with aws-vpc: route created through the bundled backend; restart leaves it alone', { skip: needsRoot(), timeout: 120_000 }, async () => {
  const ns = createScratchNetns('a')
  const work = mkdtempSync(join(tmpdir(), 'weft-awsvpc-'))
  const procs: NsProcess[] = []
  let etcd: Awaited<ReturnType<typeof startEtcd>> | undefined
  try {
    ns.exec('ip', ['link', 'set', 'lo', 'up'])
    // both veth ends stay in the namespace (no dummy module on every kernel)
    ns.exec('ip', ['link', 'add', 'eth0', 'mtu', '9001', 'type', 'veth', 'peer', 'name', 'eth0p', 'mtu', '9001'])
    ns.exec('ip', ['link', 'set', 'eth0p', 'up'])
    ns.exec('ip', ['addr', 'add', '172.31.1.10/20', 'dev', 'eth0'])
    ns.exec('ip', ['link', 'set', 'eth0', 'up'])
    etcd = await startEtcd({ netns: ns.name, host: '127.0.0.1' })
    ns.exec('etcdctl', [`--endpoints=${etcd.endpoint}`, 'put', '/coreos.com/network/config', JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'aws-vpc' } })])

    let ready: Ready | undefined
    const calls: Call[] = []
    const emu = nsSpawn(ns.name, [process.execPath, '--import', 'tsx', join(REPO, 'test/emulators/ec2/serve.ts'), JSON.stringify({ enis: [['172.31.1.10']], region: 'eu-west-3' })], {
      onLine: (line, stream) => {
        if (stream !== 'stdout' || !line.startsWith('{')) return
        const msg = JSON.parse(line) as { ready?: Ready; call?: Call }
        if (msg.ready) ready = msg.ready
        if (msg.call) calls.push(msg.call)
      },
    })
    procs.push(emu)
    const r = await eventually('the emulator to listen', async () => ready, 30_000)

    const subnetFile = join(work, 'subnet.env')
    const env = {
      AWS_ACCESS_KEY_ID: TEST_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: TEST_SECRET_ACCESS_KEY,
      AWS_ENDPOINT_URL_EC2: r.url,
      AWS_EC2_METADATA_SERVICE_ENDPOINT: r.url,
      AWS_SHARED_CREDENTIALS_FILE: join(work, 'none'),
      AWS_CONFIG_FILE: join(work, 'none'),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    }
    const startDaemon = async (): Promise<NsProcess> => {
      rmSync(subnetFile, { force: true })
      const d = nsSpawn(ns.name, [process.execPath, WEFTD, `--etcd-endpoints=${etcd!.endpoint}`, '--iface=eth0', `--subnet-file=${subnetFile}`, '--log-format=human'], { env })
      procs.push(d)
      await eventually('subnet.env', async () => {
        if (!d.isRunning()) throw new Error(`weftd exited:\n${d.output()}`)
        return readFileSync(subnetFile, 'utf8').includes('FLANNEL_SUBNET=') || undefined
      }, 30_000).catch((err: Error) => { throw new Error(`${err.message}\nweftd output:\n${d.output()}`) })
      return d
    }
    const routeCalls = () => calls.filter((c) => ['CreateRoute', 'ReplaceRoute', 'DeleteRoute'].includes(c.action))

    const first = await startDaemon()
    const subnetEnv = readFileSync(subnetFile, 'utf8')
    const subnet = /FLANNEL_SUBNET=10\.244\.(\d+)\.1\/24/.exec(subnetEnv)
    assert.ok(subnet, subnetEnv)
    assert.match(subnetEnv, /FLANNEL_MTU=9001/)
    assert.deepEqual(routeCalls().map((c) => [c.action, c.status, c.params.RouteTableId, c.params.DestinationCidrBlock, c.params.NetworkInterfaceId]),
      [['CreateRoute', 200, r.tableId, `10.244.${subnet[1]}.0/24`, r.eniIds[0]]])
    const lease = ns.exec('etcdctl', [`--endpoints=${etcd.endpoint}`, 'get', '--prefix', '/coreos.com/network/subnets/', '--print-value-only'])
    assert.match(lease, /"BackendType":"aws-vpc"/)
    await first.stop()
    assert.equal((await first.exited).code, 0, first.output())
    if (process.env.WEFT_TEST_VERBOSE) console.log(first.output())

    const before = calls.length
    const second = await startDaemon()
    assert.ok(calls.length > before, 'the restarted daemon talked to EC2')
    assert.equal(routeCalls().length, 1, 'no route call on restart')
    assert.doesNotMatch(second.output() + first.output(), new RegExp(TEST_SECRET_ACCESS_KEY.replace(/[/]/g, '\\/')))
    await second.stop()
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {})
    await etcd?.destroy().catch(() => {})
    ns.destroy()
    rmSync(work, { recursive: true, force: true })
  }
})
