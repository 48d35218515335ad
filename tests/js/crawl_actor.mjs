// An Actor written as a user would, with the Apify SDK for JavaScript and Crawlee, for `satchel run` to
// start at home:
//
//   satchel run --input '{"start": "http://..."}' -- node tests/js/crawl_actor.mjs shared
//
// It crawls the site INPUT names with CheerioCrawler: each page's URL and title into the default dataset,
// its same-host links into the default request queue, the crawl's figures into OUTPUT. argv[2] is the
// request-queue mode: "shared" (Crawlee's default RequestQueue v2, which locks the requests it takes from
// the queue's head) or "single" (RequestQueueV1: no locks, the head listed and filtered by the client).

import { CheerioCrawler } from '@crawlee/cheerio';
import { Actor } from 'apify';

const MODES = { shared: true, single: false }; // mode -> Crawlee's `requestLocking` experiment

const mode = process.argv[2];
if (!(mode in MODES)) {
    console.error(`usage: node crawl_actor.mjs ${Object.keys(MODES).join('|')}`);
    process.exit(2);
}

await Actor.init();
const input = await Actor.getInput();
const crawler = new CheerioCrawler({
    maxRequestRetries: 1,
    // A 404 is a page to Crawlee JS unless named an error; as one, it is retried, then failed and handled
    // (as Crawlee for Python does by default), which takes the queue through reclaims too.
    additionalHttpErrorStatusCodes: [404],
    maxRequestsPerCrawl: 50,
    experiments: { requestLocking: MODES[mode] },
    async requestHandler({ request, $, pushData, enqueueLinks }) {
        await pushData({ url: request.url, title: $('title').text() || null });
        await enqueueLinks();
    },
});
const statistics = await crawler.run([input.start]);
await Actor.setValue('OUTPUT', {
    mode,
    finished: statistics.requestsFinished,
    failed: statistics.requestsFailed,
});
// Crawlee sends its own last status message ("Finished! Total ...") as run() returns and waits only a
// millisecond for it, so it may still be on its way and land after this one: wait until the run shows it.
const run = Actor.apifyClient.run(Actor.getEnv().actorRunId);
for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
    if ((await run.get())?.statusMessage?.startsWith('Finished!')) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
}
// Awaited here: Actor.exit(message) gives the status message's request only a millisecond.
await Actor.setStatusMessage(`Crawled ${statistics.requestsFinished} pages`, { isStatusMessageTerminal: true });
await Actor.exit();
