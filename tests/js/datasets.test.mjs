// Compatibility check: the official JavaScript `apify-client`, unmodified, on datasets against a running
// Satchel.
//
//   SATCHEL_URL=http://127.0.0.1:8765 SATCHEL_TOKEN=... node --test tests/js/datasets.test.mjs
//
// What the JavaScript client needs that the Python one does not: booleans arrive as 1/0, every "not found"
// carries the error type `record-not-found` (or `get()` throws instead of giving undefined), and
// `listItems` builds its page from the X-Apify-Pagination-* headers (`desc` with JSON.parse, so it must be
// `true`/`false`) while `count` is the number of items in the body. `downloadItems` returns the raw
// bytes of any format, which this file parses itself.

import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, describe } from 'node:test';
import zlib from 'node:zlib';

import { ApifyClient } from 'apify-client';

import {
    expectApiError,
    expectClientError,
    queryOf,
    RecordingProxy,
    runSuffix,
    satchelEnv,
    stepThrough,
} from './recording.mjs';

const { url: SATCHEL_URL, token: TOKEN, admin: ADMIN } = satchelEnv();
const RUN = runSuffix();
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

const proxy = new RecordingProxy(SATCHEL_URL);
const step = stepThrough(proxy);
let client;
const cleanup = [];

before(async () => {
    client = new ApifyClient({
        token: TOKEN,
        baseUrl: await proxy.start(),
        publicBaseUrl: SATCHEL_URL,
        // Fail fast: a retried 5xx shows up as the same error, only later.
        maxRetries: 1,
        minDelayBetweenRetriesMillis: 100,
        timeoutSecs: 60,
    });
});

after(async () => {
    for (const id of cleanup) {
        try {
            await client.dataset(id).delete();
        } catch {
            // best effort
        }
    }
    await proxy.close();
});

// ---------------------------------------------------------------------------------------------------
// Parsers for the download formats

/** RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF line ends. */
function parseCsv(text, delimiter = ',') {
    const rows = [];
    let row = [];
    let field = '';
    let quoted = false;
    for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (quoted) {
            if (c !== '"') field += c;
            else if (text[i + 1] === '"') {
                field += '"';
                i++;
            } else quoted = false;
        } else if (c === '"') quoted = true;
        else if (c === delimiter) {
            row.push(field);
            field = '';
        } else if (c === '\n' || c === '\r') {
            if (c === '\r' && text[i + 1] === '\n') i++;
            row.push(field);
            rows.push(row);
            row = [];
            field = '';
        } else field += c;
    }
    if (field !== '' || row.length > 0) {
        row.push(field);
        rows.push(row);
    }
    return rows;
}

/** The entries of a ZIP archive (an XLSX file is one), by name, read from its central directory. */
function unzip(buffer) {
    const end = buffer.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    assert.ok(end >= 0, 'the archive has an end-of-central-directory record');
    const count = buffer.readUInt16LE(end + 10);
    let at = buffer.readUInt32LE(end + 16);
    const entries = new Map();
    for (let n = 0; n < count; n++) {
        assert.equal(buffer.readUInt32LE(at), 0x02014b50, 'a central directory entry');
        const method = buffer.readUInt16LE(at + 10);
        const size = buffer.readUInt32LE(at + 20);
        const nameLength = buffer.readUInt16LE(at + 28);
        const skip = nameLength + buffer.readUInt16LE(at + 30) + buffer.readUInt16LE(at + 32);
        const local = buffer.readUInt32LE(at + 42);
        const name = buffer.subarray(at + 46, at + 46 + nameLength).toString('utf8');
        const start = local + 30 + buffer.readUInt16LE(local + 26) + buffer.readUInt16LE(local + 28);
        const raw = buffer.subarray(start, start + size);
        assert.ok([0, 8].includes(method), `entry ${name} is stored or deflated (method ${method})`);
        entries.set(name, method === 8 ? zlib.inflateRawSync(raw) : raw);
        at += 46 + skip;
    }
    return entries;
}

const unescapeXml = (s) =>
    s
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>')
        .replace(/&quot;/g, '"')
        .replace(/&apos;/g, "'")
        .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
        .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
        .replace(/&amp;/g, '&');

/** Every text and value in an XLSX workbook's first sheet (shared strings, inline strings and numbers). */
function xlsxCells(buffer) {
    const entries = unzip(buffer);
    const sheetName = [...entries.keys()].find((n) => /^xl\/worksheets\/sheet\d*\.xml$/.test(n));
    assert.ok(sheetName, `the workbook has a worksheet (entries: ${[...entries.keys()].join(', ')})`);
    const texts = (xml) => [...xml.matchAll(/<t(?:\s[^>]*)?>([^<]*)<\/t>/g)].map((m) => unescapeXml(m[1]));
    const sheet = entries.get(sheetName).toString('utf8');
    const strings = entries.get('xl/sharedStrings.xml');
    const shared = strings ? texts(strings.toString('utf8')) : [];
    const values = [...sheet.matchAll(/<v>([^<]*)<\/v>/g)].map((m) => unescapeXml(m[1]));
    return new Set([...shared, ...texts(sheet), ...values]);
}

// ---------------------------------------------------------------------------------------------------

describe('dataset collection and one dataset', () => {
    const name = `js-ds-${RUN}`;
    const renamed = `js-ds-renamed-${RUN}`;
    let datasetId;

    step('getOrCreate(name) creates (201) and then finds (200) the same dataset', async () => {
        const first = await client.datasets().getOrCreate(name);
        datasetId = first.id;
        cleanup.push(datasetId);
        assert.equal(typeof first.id, 'string');
        assert.equal(first.name, name);
        assert.equal(first.itemCount, 0);
        assert.ok(first.createdAt instanceof Date, 'createdAt parses as a date');
        assert.ok(first.modifiedAt instanceof Date, 'modifiedAt parses as a date');
        assert.ok(first.accessedAt instanceof Date, 'accessedAt parses as a date');
        const created = proxy.matching('POST', new RegExp(`^/v2/datasets\\?name=${name}$`));
        assert.equal(created.at(-1)?.status, 201, 'a new dataset answers 201');

        const second = await client.datasets().getOrCreate(name);
        assert.equal(second.id, first.id);
        assert.equal(second.name, name);
        assert.equal(proxy.matching('POST', new RegExp(`name=${name}$`)).at(-1)?.status, 200);
    });

    step('getOrCreate() without a name makes a new unnamed dataset each time', async () => {
        const a = await client.datasets().getOrCreate();
        await new Promise((resolve) => {
            setTimeout(resolve, 15); // distinct creation times, for the newest-first order
        });
        const b = await client.datasets().getOrCreate();
        cleanup.push(a.id, b.id);
        assert.notEqual(a.id, b.id);
        assert.equal(a.name ?? null, null);
        const listed = await client.datasets().list({ unnamed: true, desc: true, limit: 2 });
        assert.deepEqual(
            listed.items.map((d) => d.id),
            [b.id, a.id],
        );
        const named = await client.datasets().list({ limit: 1000 });
        assert.ok(named.items.some((d) => d.id === datasetId));
        assert.ok(!named.items.some((d) => d.id === a.id), 'without unnamed, only named datasets are listed');
    });

    step('get() returns the dataset; by id and by username/name', async () => {
        const byId = await client.dataset(datasetId).get();
        assert.equal(byId.id, datasetId);
        assert.equal(byId.name, name);
        assert.equal(typeof byId.userId, 'string');
        assert.equal(byId.itemCount, 0);
        assert.equal(byId.cleanItemCount, 0);
        const byName = await client.dataset(`${ADMIN}/${name}`).get();
        assert.equal(byName?.id, datasetId, 'the client sends username~name');
    });

    step('update({ name }) renames it', async () => {
        const updated = await client.dataset(datasetId).update({ name: renamed });
        assert.equal(updated.id, datasetId);
        assert.equal(updated.name, renamed);
        assert.equal((await client.dataset(`${ADMIN}/${renamed}`).get())?.id, datasetId);
        assert.equal(await client.dataset(`${ADMIN}/${name}`).get(), undefined, 'the old name is free');
    });

    step('get() of a missing dataset gives undefined; other calls on it fail with record-not-found', async () => {
        const missing = client.dataset('NoSuchDataset1234');
        assert.equal(await missing.get(), undefined);
        assert.equal(await client.dataset(`${ADMIN}/no-such-dataset-${RUN}`).get(), undefined);
        await expectApiError(missing.listItems(), 404, 'record-not-found');
        await expectApiError(missing.pushItems({ a: 1 }), 404, 'record-not-found');
        await expectApiError(missing.update({ name: `x-${RUN}` }), 404, 'record-not-found');
        await expectApiError(missing.downloadItems('csv'), 404, 'record-not-found');
    });

    step('delete() removes it; a second delete is swallowed as not found', async () => {
        await client.dataset(datasetId).delete();
        assert.equal(await client.dataset(datasetId).get(), undefined);
        await client.dataset(datasetId).delete();
        assert.equal(proxy.matching('DELETE', new RegExp(`/v2/datasets/${datasetId}`)).at(-1)?.status, 404);
    });
});

describe('pushItems and listItems', () => {
    // Hidden fields start with '#'; rows 2 and 3 are empty (row 3 only once hidden fields are dropped).
    const rows = [
        {
            n: 0,
            name: 'a',
            offers: [{ price: 1 }, { price: 2 }],
            address: { city: 'Praha', zip: '11000' },
            '#debug': 'h0',
        },
        { n: 1, name: 'b', address: { city: 'Brno' } },
        {},
        { '#debug': 'only hidden' },
        { n: 4, name: 'e', offers: [{ price: 5 }], address: { city: 'Ostrava' } },
    ];
    const withoutHidden = (item) => Object.fromEntries(Object.entries(item).filter(([k]) => !k.startsWith('#')));
    const cleaned = [rows[0], rows[1], rows[4]].map(withoutHidden);
    let ds;

    before(async () => {
        const dataset = await client.datasets().getOrCreate();
        cleanup.push(dataset.id);
        ds = client.dataset(dataset.id);
    });

    step('pushItems(object) then pushItems(array) append in order; the counts follow', async () => {
        await ds.pushItems(rows[0]);
        await ds.pushItems(rows.slice(1));
        const pushes = proxy.matching('POST', /\/items(\?|$)/).slice(-2);
        assert.deepEqual(
            pushes.map((e) => e.status),
            [201, 201],
        );
        const meta = await ds.get();
        assert.equal(meta.itemCount, rows.length);
        assert.equal(meta.cleanItemCount, 3, 'cleanItemCount counts items not empty once hidden fields are dropped');
    });

    step('listItems() returns every item with total, offset, limit, count and desc', async () => {
        const page = await ds.listItems();
        assert.deepEqual(page.items, rows);
        assert.equal(page.total, rows.length);
        assert.equal(page.offset, 0);
        assert.equal(page.count, rows.length);
        assert.equal(page.desc, false);
        assert.ok(Number.isInteger(page.limit) && page.limit >= rows.length, `limit ${page.limit}`);
        const headers = proxy.matching('GET', /\/items(\?|$)/).at(-1).resHeaders;
        for (const h of ['total', 'offset', 'limit', 'count', 'desc']) {
            assert.notEqual(headers[`x-apify-pagination-${h}`], undefined, `X-Apify-Pagination-${h} is sent`);
        }
    });

    step('offset and limit page by rows', async () => {
        const page = await ds.listItems({ offset: 1, limit: 2 });
        assert.deepEqual(page.items, rows.slice(1, 3));
        assert.equal(page.offset, 1);
        assert.equal(page.limit, 2);
        assert.equal(page.count, 2);
        assert.equal(page.total, rows.length);
        const past = await ds.listItems({ offset: 10 });
        assert.deepEqual(past.items, []);
        assert.equal(past.total, rows.length);
        assert.equal(past.offset, 10);
    });

    step('desc: true (sent as desc=1) returns newest first and says desc: true', async () => {
        const page = await ds.listItems({ desc: true, limit: 2 });
        assert.equal(queryOf(proxy.matching('GET', /\/items\?/).at(-1)).get('desc'), '1');
        assert.deepEqual(page.items, [rows[4], rows[3]]);
        assert.equal(page.desc, true, 'X-Apify-Pagination-Desc must read as true');
        const headers = proxy.matching('GET', /\/items\?/).at(-1).resHeaders;
        assert.equal(headers['x-apify-pagination-desc'], 'true');
        const next = await ds.listItems({ desc: true, offset: 2, limit: 2 });
        assert.deepEqual(next.items, [rows[2], rows[1]]);
        const asc = await ds.listItems({ desc: false, limit: 1 });
        assert.equal(queryOf(proxy.matching('GET', /\/items\?/).at(-1)).get('desc'), '0');
        assert.deepEqual(asc.items, [rows[0]]);
        assert.equal(asc.desc, false);
    });

    step('fields keeps only the named fields, in the order given', async () => {
        const page = await ds.listItems({ fields: ['name', 'n'] });
        assert.deepEqual(page.items, [{ name: 'a', n: 0 }, { name: 'b', n: 1 }, {}, {}, { name: 'e', n: 4 }]);
        assert.deepEqual(Object.keys(page.items[0]), ['name', 'n']);
    });

    step('omit drops the named fields', async () => {
        const page = await ds.listItems({ omit: ['offers', 'address', '#debug'] });
        assert.deepEqual(page.items, [{ n: 0, name: 'a' }, { n: 1, name: 'b' }, {}, {}, { n: 4, name: 'e' }]);
    });

    step('skipHidden, skipEmpty and clean; total still counts every row', async () => {
        const hidden = await ds.listItems({ skipHidden: true });
        assert.deepEqual(hidden.items, rows.map(withoutHidden));

        const nonEmpty = await ds.listItems({ skipEmpty: true });
        assert.deepEqual(nonEmpty.items, [rows[0], rows[1], rows[3], rows[4]]);

        const clean = await ds.listItems({ clean: true });
        assert.equal(queryOf(proxy.matching('GET', /\/items\?/).at(-1)).get('clean'), '1');
        assert.deepEqual(clean.items, cleaned);
        assert.equal(clean.count, 3, "the client's count is the number of items returned");
        assert.equal(clean.total, rows.length);

        const paged = await ds.listItems({ clean: true, offset: 1, limit: 2 });
        assert.deepEqual(paged.items, [cleaned[1]], 'offset and limit count rows before filtering');
    });

    step('unwind spreads an array of objects into one item per element; offset and limit count rows', async () => {
        const page = await ds.listItems({ unwind: 'offers', skipHidden: true });
        const { offers: _a, ...first } = withoutHidden(rows[0]);
        const { offers: _b, ...last } = rows[4];
        assert.deepEqual(page.items, [
            { ...first, price: 1 },
            { ...first, price: 2 },
            rows[1],
            {},
            {},
            { ...last, price: 5 },
        ]);
        const one = await ds.listItems({ unwind: ['offers'], limit: 1, skipHidden: true });
        assert.deepEqual(one.items, [
            { ...first, price: 1 },
            { ...first, price: 2 },
        ]);
        const newest = await ds.listItems({ unwind: 'offers', desc: true, offset: 4, skipHidden: true });
        assert.deepEqual(
            newest.items,
            [
                { ...first, price: 1 },
                { ...first, price: 2 },
            ],
            'unwound elements keep their order under desc',
        );
    });

    step('flatten turns nested objects into dotted fields', async () => {
        const page = await ds.listItems({ flatten: ['address'], limit: 2, skipHidden: true });
        assert.deepEqual(page.items, [
            { n: 0, name: 'a', offers: rows[0].offers, 'address.city': 'Praha', 'address.zip': '11000' },
            { n: 1, name: 'b', 'address.city': 'Brno' },
        ]);
    });

    step("the client's async iterator walks every item by offset with chunkSize", async () => {
        const seen = [];
        for await (const item of ds.listItems({ chunkSize: 2 })) {
            seen.push(item);
            assert.ok(seen.length <= rows.length, 'the iterator went past the last item');
        }
        assert.deepEqual(seen, rows);
        const limited = [];
        for await (const item of ds.listItems({ offset: 1, limit: 3, chunkSize: 2 })) limited.push(item);
        assert.deepEqual(limited, rows.slice(1, 4));
    });

    step('pushItems(a JSON string) stores the items it holds', async () => {
        const dataset = await client.datasets().getOrCreate();
        cleanup.push(dataset.id);
        const raw = client.dataset(dataset.id);
        await raw.pushItems(JSON.stringify([{ s: 1 }, { s: 2 }]));
        await raw.pushItems('{"s": 3, "text": "žluťoučký kůň"}');
        const page = await raw.listItems();
        assert.deepEqual(page.items, [{ s: 1 }, { s: 2 }, { s: 3, text: 'žluťoučký kůň' }]);
    });

    step('pushItems refuses what is not an object or an array of objects (4xx with the envelope)', async () => {
        await expectApiError(ds.pushItems('[1, 2]'), 400);
        await expectApiError(ds.pushItems('{"broken": '), 400);
        assert.equal((await ds.get()).itemCount, rows.length, 'nothing was stored');
    });
});

describe('a dataset schema', () => {
    step('a push with an item the fields refuse fails whole: schema-validation-error, details in data', async () => {
        const fields = { type: 'object', properties: { title: { type: 'string' } }, required: ['title'] };
        const made = await client.datasets().getOrCreate(`schema-${RUN}`, { schema: { actorSpecification: 1, fields } });
        cleanup.push(made.id);
        const ds = client.dataset(made.id);
        await ds.pushItems({ title: 'kept' });
        await assert.rejects(ds.pushItems([{ title: 'fine' }, { title: 3 }, {}]), (err) => {
            assert.equal(err.statusCode, 400, err.message);
            assert.equal(err.type, 'schema-validation-error');
            const invalid = err.data.invalidItems;
            assert.deepEqual(invalid.map((item) => item.itemPosition), [1, 2]);
            assert.deepEqual(
                invalid.map((item) => item.validationErrors.map((e) => [e.instancePath, e.keyword, e.params])),
                [[['/title', 'type', { type: 'string' }]], [['', 'required', { missingProperty: 'title' }]]],
            );
            return true;
        });
        const { items } = await ds.listItems();
        assert.deepEqual(items.map((item) => item.title), ['kept']);
    });
});

describe('a big push', () => {
    const COUNT = 6000;
    const filler = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(16);
    const items = Array.from({ length: COUNT }, (_, i) => ({
        i,
        url: `https://example.com/page/${i}`,
        text: `${filler}${i}`,
    }));
    let ds;

    before(async () => {
        const dataset = await client.datasets().getOrCreate();
        cleanup.push(dataset.id);
        ds = client.dataset(dataset.id);
    });

    step('pushItems of a ~6 MB array goes out compressed in one request and is stored whole', async () => {
        const decoded = Buffer.byteLength(JSON.stringify(items));
        assert.ok(decoded > 5 * 1024 * 1024, `the body (${decoded} B) is over the seed's 5 MB`);
        await ds.pushItems(items);
        const push = proxy.matching('POST', new RegExp(`/v2/datasets/${ds.id}/items`));
        assert.equal(push.length, 1, 'the client does not chunk');
        assert.ok(['br', 'gzip'].includes(push[0].reqHeaders['content-encoding']), 'the body was compressed');
        const wire = push[0].reqHeaders['content-length'];
        if (wire !== undefined) assert.ok(Number(wire) < decoded / 10, `and much smaller on the wire (${wire} B)`);
        assert.equal(push[0].status, 201);
        assert.equal((await ds.get()).itemCount, COUNT);
    });

    step('pages at the end and newest first', async () => {
        const tail = await ds.listItems({ offset: COUNT - 5 });
        assert.deepEqual(
            tail.items.map((it) => it.i),
            [5995, 5996, 5997, 5998, 5999],
        );
        assert.equal(tail.total, COUNT);
        assert.equal(tail.count, 5);
        assert.deepEqual(tail.items[4], items[COUNT - 1]);
        const newest = await ds.listItems({ desc: true, limit: 3 });
        assert.deepEqual(
            newest.items.map((it) => it.i),
            [5999, 5998, 5997],
        );
    });

    step('the async iterator reads all items in chunks', async () => {
        let next = 0;
        for await (const item of ds.listItems({ chunkSize: 2500, fields: ['i'] })) {
            assert.deepEqual(item, { i: next });
            next++;
        }
        assert.equal(next, COUNT);
    });
});

describe('downloadItems', () => {
    const table = [
        { id: 1, title: 'Alpha', price: 10.5, note: 'žluťoučký kůň' },
        { id: 2, title: 'Beta "quoted", with comma', price: 20, note: 'line one\nline two' },
        { id: 3, title: 'Gamma <&>', price: 0, note: 'plain' },
    ];
    const columns = ['id', 'title', 'price', 'note'];
    let ds;

    before(async () => {
        const dataset = await client.datasets().getOrCreate();
        cleanup.push(dataset.id);
        ds = client.dataset(dataset.id);
        await ds.pushItems(table);
    });

    const lastDownload = () => proxy.matching('GET', new RegExp(`/v2/datasets/${ds.id}/items\\?`)).at(-1);

    step('json', async () => {
        const body = await ds.downloadItems('json');
        assert.ok(Buffer.isBuffer(body));
        assert.deepEqual(JSON.parse(body.toString('utf8')), table);
        assert.equal(queryOf(lastDownload()).get('format'), 'json');
    });

    step('jsonl: one JSON object per line', async () => {
        const body = await ds.downloadItems('jsonl');
        const lines = body.toString('utf8').split('\n').filter(Boolean);
        assert.deepEqual(
            lines.map((l) => JSON.parse(l)),
            table,
        );
        const two = await ds.downloadItems('jsonl', { desc: true, limit: 2 });
        assert.deepEqual(
            two
                .toString('utf8')
                .split('\n')
                .filter(Boolean)
                .map((l) => JSON.parse(l)),
            [table[2], table[1]],
        );
    });

    step('csv: a BOM by default, a header row, quoted values, the pagination headers', async () => {
        const body = await ds.downloadItems('csv');
        assert.ok(body.subarray(0, 3).equals(BOM), 'CSV starts with a UTF-8 BOM by default');
        const [header, ...data] = parseCsv(body.subarray(3).toString('utf8'));
        assert.deepEqual([...header].sort(), [...columns].sort());
        assert.deepEqual(
            data.map((row) => Object.fromEntries(header.map((h, i) => [h, row[i]]))),
            table.map((item) => Object.fromEntries(columns.map((c) => [c, String(item[c])]))),
        );
        const exchange = lastDownload();
        assert.match(exchange.resHeaders['content-type'], /^text\/csv/);
        assert.equal(exchange.resHeaders['x-apify-pagination-total'], '3');
    });

    step('csv with bom: false, delimiter, skipHeaderRow, fields and attachment', async () => {
        const body = await ds.downloadItems('csv', {
            bom: false,
            delimiter: ';',
            skipHeaderRow: true,
            fields: ['title', 'id'],
            attachment: true,
        });
        const query = queryOf(lastDownload());
        assert.equal(query.get('bom'), '0');
        assert.equal(query.get('skipHeaderRow'), '1');
        assert.equal(query.get('fields'), 'title,id');
        assert.ok(!body.subarray(0, 3).equals(BOM), 'no BOM with bom: false');
        assert.deepEqual(
            parseCsv(body.toString('utf8'), ';'),
            table.map((item) => [item.title, String(item.id)]),
        );
        assert.match(lastDownload().resHeaders['content-disposition'] ?? '', /^attachment/);
    });

    step('xlsx: a workbook holding every header and value', async () => {
        const body = await ds.downloadItems('xlsx');
        assert.equal(body.subarray(0, 2).toString('latin1'), 'PK', 'an XLSX file is a ZIP archive');
        assert.match(lastDownload().resHeaders['content-type'], /spreadsheetml\.sheet/);
        const cells = xlsxCells(body);
        for (const value of [...columns, ...table.flatMap((item) => columns.map((c) => String(item[c])))]) {
            assert.ok(cells.has(value), `the sheet holds ${JSON.stringify(value)}`);
        }
    });

    step('xml: items/item by default, xmlRoot and xmlRow rename them, text is escaped', async () => {
        const xml = (await ds.downloadItems('xml')).toString('utf8');
        assert.match(xml, /<items>/);
        assert.equal((xml.match(/<item>/g) ?? []).length, 3);
        assert.match(xml, /<title>Gamma &lt;&amp;&gt;<\/title>/);
        assert.match(xml, /<note>žluťoučký kůň<\/note>/);
        assert.match(lastDownload().resHeaders['content-type'], /xml/);

        const renamed = (await ds.downloadItems('xml', { xmlRoot: 'products', xmlRow: 'product', limit: 2 })).toString(
            'utf8',
        );
        assert.match(renamed, /<products>[\s\S]*<\/products>/);
        assert.equal((renamed.match(/<product>/g) ?? []).length, 2);
        assert.ok(!renamed.includes('<item>'));
    });

    step('html: a table with a header and one row per item, text escaped', async () => {
        const html = (await ds.downloadItems('html')).toString('utf8');
        assert.match(html, /<table/i);
        for (const column of columns) assert.ok(html.includes(column), `the table names column ${column}`);
        assert.ok(html.includes('Gamma &lt;&amp;&gt;'), 'values are HTML-escaped');
        assert.ok(!html.includes('Gamma <&>'));
        assert.ok(html.includes('žluťoučký kůň'));
        assert.ok((html.match(/<tr/gi) ?? []).length >= table.length, 'a row per item');
        assert.match(lastDownload().resHeaders['content-type'], /^text\/html/);
    });

    step('rss: an RSS channel with one item per dataset item', async () => {
        const rss = (await ds.downloadItems('rss')).toString('utf8');
        assert.match(rss, /<rss[\s>][\s\S]*<channel>[\s\S]*<\/channel>[\s\S]*<\/rss>/);
        assert.equal((rss.match(/<item>/g) ?? []).length, 3);
        assert.match(rss, /<title>Gamma &lt;&amp;&gt;<\/title>/);
    });

    step('the listing options apply to downloads too', async () => {
        const body = await ds.downloadItems('jsonl', { offset: 1, limit: 1, omit: ['note', 'price'] });
        assert.deepEqual(JSON.parse(body.toString('utf8').trim()), { id: 2, title: table[1].title });
    });

    step('getStatistics() answers with fieldStatistics', async () => {
        const statistics = await ds.getStatistics();
        assert.ok(statistics && 'fieldStatistics' in statistics, JSON.stringify(statistics));
    });

    step('createItemsPublicUrl signs a URL that reads the items without a token', async () => {
        const publicUrl = new URL(await ds.createItemsPublicUrl({ expiresInSecs: 600, fields: ['title'] }));
        assert.equal(publicUrl.origin, new URL(SATCHEL_URL).origin, 'the URL is on publicBaseUrl');
        assert.ok(publicUrl.searchParams.get('signature'), 'the owner gets a signed URL');
        const response = await fetch(publicUrl);
        assert.equal(response.status, 200);
        assert.deepEqual(
            await response.json(),
            table.map(({ title }) => ({ title })),
        );

        const anonymous = new ApifyClient({ baseUrl: SATCHEL_URL, publicBaseUrl: SATCHEL_URL, maxRetries: 0 });
        const signature = publicUrl.searchParams.get('signature');
        const page = await anonymous.dataset(ds.id).listItems({ signature, limit: 1 });
        assert.deepEqual(page.items, [table[0]]);
        assert.equal(page.total, table.length);
        await expectClientError(anonymous.dataset(ds.id).listItems());
        await expectClientError(anonymous.dataset(ds.id).listItems({ signature: 'x'.repeat(20) }));
    });
});
