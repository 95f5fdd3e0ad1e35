/**
 * The environment a service gets (systemd, a DaemonSet). This machine's shells export
 * NODE_EXTRA_CA_CERTS, a 144-certificate bundle that every Node process parses before its
 * first line of code (~40 ms and ~2 MB here); benchmarks run weftd and its baselines without
 * it, and repeat the start-up figures with it when it is set.
 */
export const SERVICE_ENV: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: undefined }
