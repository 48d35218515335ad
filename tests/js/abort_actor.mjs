// An Actor for `satchel run` that is stopped in the middle of its crawl, as a user stops one with Ctrl-C:
//
//   satchel run -- node tests/js/abort_actor.mjs
//
// It queues 20 requests and handles them with Crawlee's BasicCrawler, whose request queue (RequestQueue v2)
// locks what it takes from the queue's head; each handler says "handling" and then waits, so a stop always
// finds requests locked. On the platform's `aborting` event the SDK and Crawlee pause the crawl, release those
// locks and exit by themselves.

import { BasicCrawler } from '@crawlee/cheerio';
import { Actor } from 'apify';

await Actor.init();
const queue = await Actor.openRequestQueue();
await queue.addRequests(Array.from({ length: 20 }, (_, i) => ({ url: `http://127.0.0.1:9/page/${i}` })));
const crawler = new BasicCrawler({
    requestQueue: queue,
    maxConcurrency: 2,
    requestHandlerTimeoutSecs: 120,
    async requestHandler() {
        console.log('handling');
        await new Promise((resolve) => setTimeout(resolve, 3_000));
    },
});
await crawler.run();
await Actor.exit();
