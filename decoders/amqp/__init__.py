"""AMQP 0-9-1 connections (RabbitMQ): the session, every message published and delivered, and the
requests that shape the broker (declares, bindings, consumers, transactions).

One decoder per connection, fed both directions. Roles come from content: the side that sends the
protocol header or a client-only method (connection.start-ok, basic.publish...) is the client, the side
that sends connection.start or basic.deliver is the server (`ChannelInfo.listening` only when nothing
has told yet). Frames come from `decoders.measured_frames.MeasuredReader` (AMQP's size prefix and end octet).

What comes out:
- `BrokerSession` at close: server product and version, user (from the PLAIN or AMQPLAIN response;
  the call carrying that response is a `Secret`), virtual host, heartbeat and frame-max, how the
  connection closed (reply code and text, and who closed it), and how many of each method crossed it.
- `BrokerMessage` per basic.publish (client to server) and per basic.deliver or basic.get-ok (server to
  client), once its content header and body have been seen: exchange, routing key, body size, the basic
  properties and headers (redacted by name). Its status settles with the protocol: publisher confirms
  (confirm.select, then the broker's basic.ack or basic.nack by sequence number, `multiple` included,
  and basic.return for an unroutable mandatory message), transactions (tx.commit-ok or
  tx.rollback-ok), and for deliveries the client's basic.ack, basic.nack or basic.reject by delivery
  tag, or `no-ack` consumers and gets. Without confirms or a transaction a publish is
  `unacknowledged`: AMQP asks nothing more.
- `BrokerOperation` for each other request of a channel, paired with its `-ok` reply (channels answer
  in order): channel.open/close/flow, exchange and queue declare/delete/bind/unbind, queue.purge,
  basic.qos/consume/cancel/recover, basic.get that found the queue empty, confirm.select, tx.*; a
  channel closed by the server with an error fails the requests still waiting on it, and names the
  method that caused it.

Modules, in the order a connection meets them:
- `decoder`: `AmqpDecoder`, detection (`score`), roles, frames out of both streams, dispatch, close;
- `connection`: the connection class's methods: login, tuning, virtual host, close;
- `operations`: a channel's requests paired with their `-ok` replies, channels closing;
- `content`: messages: a content method, its header and body frames, returned messages;
- `acknowledgements`: publisher confirms, the client's ack/nack/reject, transactions;
- `state`: what a connection remembers (per channel) and the tables the others read.
`AmqpDecoder` is the one public name (`decoders.amqp:AmqpDecoder`, the registry's reference).
"""

from decoders.amqp.decoder import AmqpDecoder

__all__ = ["AmqpDecoder"]
