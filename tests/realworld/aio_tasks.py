# SPDX-License-Identifier: MIT
"""aio_tasks.py - asyncio with 10 000 concurrent tasks that each yield to
the loop a few times and hand a value through a queue, for test_realworld."""
import asyncio

N = 10_000


async def worker(i, q):
    await asyncio.sleep(0)
    await q.put(i * i)
    await asyncio.sleep(0)
    return i


async def main():
    q = asyncio.Queue()
    tasks = [asyncio.create_task(worker(i, q)) for i in range(N)]
    done = await asyncio.gather(*tasks)
    total = 0
    while not q.empty():
        total += q.get_nowait()
    print("tasks", len(done), "sum", sum(done), "squares", total)


asyncio.run(main())
