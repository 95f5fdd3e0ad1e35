/** The kernel contract against LinuxKernel in a throwaway namespace per test (root only). */
import { LinuxKernel } from '../../src/kernel/linux/linux-kernel.ts'
import { kernelContract } from '../compliance/kernel-contract.ts'
import { createScratchNetns, needsRoot } from '../helpers/scratch-netns.ts'

kernelContract('LinuxKernel', async () => {
  const ns = createScratchNetns('c')
  let kernel: LinuxKernel
  try {
    kernel = new LinuxKernel({ netns: ns.name })
  } catch (err) {
    ns.destroy()
    throw err
  }
  return {
    kernel,
    teardown: async () => {
      kernel.close()
      ns.destroy()
    },
  }
}, { skip: needsRoot() })
