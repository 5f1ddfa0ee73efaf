from tests.integration.helpers import create_endpoint, delivery_outcome, first_connection_id, post_event, tracking_event


async def test_event_reaches_endpoint(api, client, receiver):
    url = receiver.url()
    endpoint = await create_endpoint(api, url)
    first = await delivery_outcome(client, first_connection_id(endpoint["id"]))
    print(first.model_dump_json(indent=1))
    accepted = await post_event(api, tracking_event())
    print(accepted)
    record = await delivery_outcome(client, accepted["deliveries"][0]["id"])
    print(record.model_dump_json(indent=1))
    got = await receiver.wait_for(url, 2)
    print(got)
    assert record.result == "success"
