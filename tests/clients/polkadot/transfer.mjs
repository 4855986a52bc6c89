// polkadot.js (@polkadot/api) against a gensyn-node: connect, read a balance, sign and send a
// transfer with signAndSend, wait until it is finalized, print one JSON object for the Python
// test (tests/clients/test_polkadot_js.py) to assert on.
//
//   node transfer.mjs ws://127.0.0.1:PORT [amount] [--next-nonce] [--payment-info]
//
// --next-nonce signs with `{ nonce: -1 }` (the node's system_accountNextIndex) instead of the
// default (the nonce read from System.Account); --payment-info also asks `tx.paymentInfo`.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';

const TIMEOUT_MS = 90_000;

function fail (message) {
  console.log(JSON.stringify({ error: String(message) }));
  process.exit(1);
}

setTimeout(() => fail('timed out'), TIMEOUT_MS).unref();

async function freeBalance (api, address, at) {
  const account = at ? await api.query.system.account.at(at, address) : await api.query.system.account(address);
  return account.data.free.toBigInt();
}

function sendUntilFinalized (tx, signer, options) {
  const statuses = [];
  return new Promise((resolve, reject) => {
    tx.signAndSend(signer, options, (result) => {
      statuses.push(result.status.type);
      if (result.status.isFinalized) {
        resolve({ result, statuses });
      } else if (result.isError) {
        reject(new Error(`transaction ended with ${result.status.type}`));
      }
    }).catch(reject);
  });
}

async function main () {
  const [url, amountArg, ...flags] = process.argv.slice(2);
  const amount = BigInt(amountArg ?? '1000000000000');
  const options = flags.includes('--next-nonce') ? { nonce: -1 } : {};
  const api = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true });
  await api.isReady;
  const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
  const alice = keyring.addFromUri('//Alice');
  const bob = keyring.addFromUri('//Bob');

  const aliceBefore = await freeBalance(api, alice.address);
  const bobBefore = await freeBalance(api, bob.address);
  const tx = api.tx.balances.transferKeepAlive(bob.address, amount);
  const partialFee = flags.includes('--payment-info') ? (await tx.paymentInfo(alice)).partialFee.toString() : null;
  const { result, statuses } = await sendUntilFinalized(tx, alice, options);
  const blockHash = result.status.asFinalized.toHex();
  const events = result.events.map(({ event }) => `${event.section}.${event.method}`);
  const failed = result.dispatchError ? result.dispatchError.toString() : null;
  const bobAfter = await freeBalance(api, bob.address, blockHash);

  console.log(JSON.stringify({
    chain: (await api.rpc.system.chain()).toString(),
    specName: api.runtimeVersion.specName.toString(),
    specVersion: api.runtimeVersion.specVersion.toNumber(),
    ss58Format: api.registry.chainSS58,
    existentialDeposit: api.consts.balances.existentialDeposit.toString(),
    aliceBefore: aliceBefore.toString(),
    bobBefore: bobBefore.toString(),
    bobAfter: bobAfter.toString(),
    amount: amount.toString(),
    txHash: tx.hash.toHex(),
    nonce: tx.nonce.toNumber(),
    partialFee,
    blockHash,
    statuses,
    events,
    dispatchError: failed
  }));
  await api.disconnect();
}

main().then(() => process.exit(0), (error) => fail(error && error.stack ? error.stack : error));
