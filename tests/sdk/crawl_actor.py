"""An Actor written as a user would, with the Apify SDK and Crawlee, for `satchel run` to start at home.

It crawls the site INPUT names with BeautifulSoupCrawler: each page's URL and title into the default
dataset, its same-host links into the default request queue, the crawl's figures into OUTPUT. argv[1] is
the SDK's request-queue mode: "single" (the default storage client) or "shared" (locks on the queue's head).
"""

import asyncio
import sys

from apify import Actor
from apify.storage_clients import ApifyStorageClient, SmartApifyStorageClient
from crawlee import ConcurrencySettings, service_locator
from crawlee.crawlers import BeautifulSoupCrawler, BeautifulSoupCrawlingContext


async def main(mode: str) -> None:
    if mode == "shared":
        cloud = ApifyStorageClient(request_queue_access="shared")
        service_locator.set_storage_client(SmartApifyStorageClient(cloud_storage_client=cloud))
    async with Actor:
        actor_input = await Actor.get_input()
        # One page at a time in shared mode: the SDK's shared queue client (apify 4.1.0) can stall for good
        # when a head listing locks a request that another task of the same crawler is still adding (the add's
        # reply then overwrites the listed entry, and the client's cached head looks empty from then on). A
        # server that shows every write at once (Satchel) opens that window; one task at a time shuts it.
        one_at_a_time = ConcurrencySettings(min_concurrency=1, desired_concurrency=1, max_concurrency=1)
        crawler = BeautifulSoupCrawler(
            max_request_retries=1,
            max_requests_per_crawl=50,
            concurrency_settings=one_at_a_time if mode == "shared" else ConcurrencySettings(),
        )

        @crawler.router.default_handler
        async def handle(context: BeautifulSoupCrawlingContext) -> None:
            title = context.soup.title.string if context.soup.title else None
            await context.push_data({"url": context.request.url, "title": title})
            await context.enqueue_links()

        statistics = await crawler.run([actor_input["start"]])
        await Actor.set_value(
            "OUTPUT",
            {"mode": mode, "finished": statistics.requests_finished, "failed": statistics.requests_failed},
        )
        await Actor.set_status_message(f"Crawled {statistics.requests_finished} pages", is_terminal=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
