"""Many clients changing one print at once: no answer lost, no deadlock, no mixed state."""

import asyncio

ANSWERS = ["LOOKS_BAD", "LOOKS_OK", "UNANSWERED"]


async def test_fifty_concurrent_patches_each_answer_the_state_they_committed(
    client, db, factory, owner
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    frames = [await factory.feedback(print_id) for _ in range(3)]

    def body(n: int) -> dict:
        return {
            "alert_overwrite": "FAILED" if n % 2 else "NOT_FAILED",
            "printshotfeedback_set": [{"id": frame, "answer": ANSWERS[n % 3]} for frame in frames],
        }

    async def patch(n: int):
        response = await client.patch(f"/api/v1/prints/{print_id}/", json=body(n), headers=headers)
        return n, response.status, await response.json()

    results = await asyncio.wait_for(asyncio.gather(*(patch(n) for n in range(50))), 30)

    assert [status for _, status, _ in results] == [200] * 50, results
    for n, _, answer in results:
        assert answer["alert_overwrite"] == body(n)["alert_overwrite"]
        assert [shot["answer"] for shot in answer["printshotfeedback_set"]] == [ANSWERS[n % 3]] * 3
    final = await db.fetchrow("SELECT alert_overwrite FROM prints WHERE id = $1", print_id)
    stored = await db.fetch(
        "SELECT answer FROM print_shot_feedbacks WHERE print_id = $1 ORDER BY id", print_id
    )
    states = [
        (answer["alert_overwrite"], [shot["answer"] for shot in answer["printshotfeedback_set"]])
        for _, _, answer in results
    ]
    assert (final["alert_overwrite"], [row["answer"] for row in stored]) in states


async def test_concurrent_patches_of_different_prints_of_one_user_do_not_deadlock(
    client, factory, owner
):
    user_id, headers = owner
    prints = [await factory.print(user_id) for _ in range(10)]

    async def patch(print_id: int, verdict: str):
        response = await client.patch(
            f"/api/v1/prints/{print_id}/", json={"alert_overwrite": verdict}, headers=headers
        )
        return response.status

    calls = [patch(p, v) for p in prints for v in ("FAILED", "NOT_FAILED", "FAILED")]
    statuses = await asyncio.wait_for(asyncio.gather(*calls), 30)

    assert statuses == [200] * 30
