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
    sudo: api.tx.sudo.sudo(api.tx.balances.forceTransfer(ALICE, BOB, 5n))
  };
  const accounts = await api.query.system.account.entries();
  const ledgers = await api.query.staking.ledger.entries();
  console.log(JSON.stringify({
    types: api.registry.lookup.types.length,
    unresolved: unresolvedTypes(api),
    calls: Object.fromEntries(Object.entries(calls).map(([name, tx]) => [name, tx.method.toHex()])),
    accounts: accounts.length,
    ledgerStashes: ledgers.map(([, ledger]) => ledger.unwrap().stash.toString()),
    bondingDuration: api.consts.staking.bondingDuration.toNumber(),
    metadataVersion: api.runtimeMetadata.version
  }));
  await api.disconnect();
}

main().then(() => process.exit(0), (error) => fail(error && error.stack ? error.stack : error));
