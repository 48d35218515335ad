"""The HTTP layer: routing, auth token, parameters, the API's envelopes; calls only service/."""
