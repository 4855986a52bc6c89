// polkadot.js reads our metadata: every type of the portable registry resolves to a type it can
// construct, calls of every pallet compose from the metadata, storage maps iterate. Prints one
// JSON object for tests/clients/test_polkadot_js.py, which compares the calls with the node's
// own encoding.
//
//   node registry.mjs ws://127.0.0.1:PORT
import { ApiPromise, WsProvider } from '@polkadot/api';

const TIMEOUT_MS = 60_000;
const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const BOB = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const MNIST_ROOT = '0x7f5ec93fd2d024cc57325cc8487d47992c5782cf3ec152a3e833f0d19b4ebff3';

function fail (message) {
  console.log(JSON.stringify({ error: String(message) }));
  process.exit(1);
}

setTimeout(() => fail('timed out'), TIMEOUT_MS).unref();

function unresolvedTypes (api) {
  const lookup = api.registry.lookup;
  const bad = [];
  for (const { id } of lookup.types) {
    try {
      const def = lookup.getTypeDef(id);
      api.registry.createType(def.lookupName || def.type);
    } catch (error) {
      bad.push(`${id.toNumber()}: ${String(error).slice(0, 200)}`);
    }
  }
  return bad;
}

async function main () {
  const api = await ApiPromise.create({ provider: new WsProvider(process.argv[2]), noInitWarn: true });
  const calls = {
    remark: api.tx.system.remarkWithEvent('0x68656c6c6f'),
    transfer: api.tx.balances.transferKeepAlive(BOB, 12345n),
    bond: api.tx.staking.bond(1000n, 'Staked'),
    validate: api.tx.staking.validate({ commission: 1000, blocked: false }, '0x' + '11'.repeat(32)),
    sudo: api.tx.sudo.sudo(api.tx.balances.forceTransfer(ALICE, BOB, 5n)),
    submitJob: api.tx.mlCompute.submitJob(2, MNIST_ROOT,
      { lrQ16: 3277, momentumQ16: 58982, weightDecayQ16: 0, batchSize: 64 }, 100, 10, 5000000000000n,
      { verifiers: 2, segments: 3, fee: 100000000000n }, 20),
    challenge: api.tx.mlCompute.challenge(3, 1, '0x' + '01'.repeat(32), 1000000000000n)
  };
  const architectures = await api.query.mlCompute.architectures.entries();
  const accounts = await api.query.system.account.entries();
  const ledgers = await api.query.staking.ledger.entries();
  console.log(JSON.stringify({
    types: api.registry.lookup.types.length,
    unresolved: unresolvedTypes(api),
    calls: Object.fromEntries(Object.entries(calls).map(([name, tx]) => [name, tx.method.toHex()])),
    accounts: accounts.length,
    ledgerStashes: ledgers.map(([, ledger]) => ledger.unwrap().stash.toString()),
    bondingDuration: api.consts.staking.bondingDuration.toNumber(),
    architectures: architectures.map(([, arch]) => arch.unwrap().name.toUtf8()).sort(),
    metadataVersion: api.runtimeMetadata.version
  }));
  await api.disconnect();
}

main().then(() => process.exit(0), (error) => fail(error && error.stack ? error.stack : error));
