// Compatibility check: the official JavaScript `apify-client`, unmodified, on an Actor's runs against a
// running Satchel: a run started through the client, the Actor's last run read, filtered, changed and aborted;
// a run's log read, and call(), which follows the started run's log.
//
//   SATCHEL_URL=http://127.0.0.1:8765 SATCHEL_TOKEN=... node --test tests/js/runs.test.mjs

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ApifyClient } from 'apify-client';

import { runSuffix, satchelEnv } from './recording.mjs';

const { url: SATCHEL_URL, token: TOKEN } = satchelEnv();
const client = new ApifyClient({ token: TOKEN, baseUrl: SATCHEL_URL, maxRetries: 1, timeoutSecs: 30 });
const ACTOR = `~js-runs-${runSuffix()}`;

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

describe('apify-client: an Actor run and its last run', () => {
    let first;
    let second;

    test('start() makes a run with its own storages, holding the input', async () => {
        first = await client.actor(ACTOR).start({ hello: 'world' });
        assert.equal(first.status, 'RUNNING');
        assert.ok(first.defaultKeyValueStoreId && first.defaultDatasetId && first.defaultRequestQueueId);
        const input = await client.keyValueStore(first.defaultKeyValueStoreId).getRecord('INPUT');
        assert.deepEqual(input.value, { hello: 'world' });
        await pause(20); // the next run starts later: the last run is the one started last
        second = await client.actor(ACTOR).start();
    });

    test('lastRun().get() finds the run started last, and filters by status', async () => {
        assert.equal((await client.actor(ACTOR).lastRun().get()).id, second.id);
        assert.equal(await client.actor(ACTOR).lastRun({ status: 'SUCCEEDED' }).get(), undefined);
    });

    test('lastRun().update() changes the run started last and leaves the other alone', async () => {
        const updated = await client.actor(ACTOR).lastRun().update({ statusMessage: 'halfway' });
        assert.equal(updated.id, second.id);
        assert.equal(updated.statusMessage, 'halfway');
        assert.equal((await client.run(second.id).get()).statusMessage, 'halfway');
        assert.equal((await client.run(first.id).get()).statusMessage ?? null, null);
    });

    test('a finished run is no longer the last RUNNING one', async () => {
        await client.run(second.id).update({ status: 'SUCCEEDED' });
        assert.equal((await client.actor(ACTOR).lastRun({ status: 'SUCCEEDED' }).get()).id, second.id);
        assert.equal((await client.actor(ACTOR).lastRun({ status: 'RUNNING' }).get()).id, first.id);
        const moved = await client.actor(ACTOR).lastRun({ status: 'RUNNING' }).update({ statusMessage: 'first' });
        assert.equal(moved.id, first.id);
    });

    test('lastRun().abort() aborts the run the filters choose', async () => {
        const aborted = await client.actor(ACTOR).lastRun({ status: 'RUNNING' }).abort();
        assert.equal(aborted.id, first.id);
        assert.equal(aborted.status, 'ABORTED');
        assert.equal((await client.run(second.id).get()).status, 'SUCCEEDED');
    });
});

describe('apify-client: a run\'s log', () => {
    test('log().get() reads what was added to it, through the run and the last run', async () => {
        const run = await client.actor(`${ACTOR}-log`).start();
        assert.ok(!(await client.run(run.id).log().get())); // empty: the client reads nothing
        const added = await fetch(`${SATCHEL_URL}/v2/actor-runs/${run.id}/log`, {
            method: 'POST',
            headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' },
            body: 'hello from the command\n',
        });
        assert.equal(added.status, 204);
        assert.equal(await client.run(run.id).log().get(), 'hello from the command\n');
        assert.equal(await client.actor(`${ACTOR}-log`).lastRun().log().get(), 'hello from the command\n');
        const stream = await client.run(run.id).log().stream();
        const chunks = [];
        for await (const chunk of stream) chunks.push(chunk);
        assert.equal(Buffer.concat(chunks).toString(), 'hello from the command\n');
    });

    test('call() follows the started run\'s log, and returns when its wait is up', async () => {
        // call() redirects the run's log to this process's; a 404 there had ended the process.
        const run = await client.actor(`${ACTOR}-call`).call({ a: 1 }, { waitSecs: 1 });
        assert.equal(run.status, 'RUNNING');
        await client.run(run.id).abort();
    });
});
