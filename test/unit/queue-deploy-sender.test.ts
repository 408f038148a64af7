/**
 * The Azure deploy-queue sender cannot reach Service Bus here: check its message mapping and its
 * error classification with the SDK's own ServiceBusError, through a stand-in for ServiceBusSender.
 */
import { ServiceBusError, type ServiceBusMessage } from '@azure/service-bus';
import {
  AzureDeployQueueSender,
  mapServiceBusError,
  toRestRequest,
  toServiceBusMessage,
} from '../../shared/adapters/deploy-queue';
import { PipelineError, errorCode, isRetryable } from '../../shared/domain/errors';

const at = new Date(Date.UTC(2026, 0, 5, 9, 30, 0));

test('message id = idempotency key, session = environment, JSON body, scheduled time kept', () => {
  expect(
    toServiceBusMessage({
      body: { version: '1.4.0' },
      messageId: 'push:abc',
      sessionId: 'uat',
      scheduledEnqueueTimeUtc: at,
    }),
  ).toEqual({
    body: { version: '1.4.0' },
    messageId: 'push:abc',
    sessionId: 'uat',
    contentType: 'application/json',
    scheduledEnqueueTimeUtc: at,
  });
  expect(toServiceBusMessage({ body: 'x', messageId: 'm', sessionId: 'prod' })).not.toHaveProperty(
    'scheduledEnqueueTimeUtc',
  );
});

test('the REST request carries the same properties', () => {
  expect(
    toRestRequest({ body: { a: 1 }, messageId: 'm', sessionId: 'prod', scheduledEnqueueTimeUtc: at }),
  ).toEqual({
    headers: {
      'content-type': 'application/json; charset=utf-8',
      brokerproperties:
        '{"MessageId":"m","SessionId":"prod","ScheduledEnqueueTimeUtc":"Mon, 05 Jan 2026 09:30:00 GMT"}',
    },
    body: '{"a":1}',
  });
});

test('the Azure sender sends the mapped message and closes its sender', async () => {
  const sent: ServiceBusMessage[] = [];
  let closed = false;
  const sender = new AzureDeployQueueSender({
    fullyQualifiedNamespace: 'unused.servicebus.windows.net',
    queueName: 'deploy-requests',
    sender: { sendMessages: async (m) => void sent.push(m), close: async () => void (closed = true) },
  });
  await sender.send({ body: { v: 1 }, messageId: 'k', sessionId: 'uat' });
  await sender.close();
  expect(sent).toEqual([
    { body: { v: 1 }, messageId: 'k', sessionId: 'uat', contentType: 'application/json' },
  ]);
  expect(closed).toBe(true);
});

test.each([
  ['ServiceBusy', 'QUEUE.UNAVAILABLE', true],
  ['ServiceTimeout', 'QUEUE.UNAVAILABLE', true],
  ['ServiceCommunicationProblem', 'QUEUE.UNAVAILABLE', true],
  ['MessagingEntityNotFound', 'QUEUE.REJECTED', false],
  ['UnauthorizedAccess', 'QUEUE.REJECTED', false],
  ['MessageSizeExceeded', 'QUEUE.REJECTED', false],
  ['QuotaExceeded', 'QUEUE.UNAVAILABLE', true],
] as const)('ServiceBusError %s → %s', async (sbCode, code, retryable) => {
  const sender = new AzureDeployQueueSender({
    fullyQualifiedNamespace: 'unused.servicebus.windows.net',
    queueName: 'deploy-requests',
    sender: {
      sendMessages: async () => {
        throw new ServiceBusError(`failed: SharedAccessKey=abcdefSECRET; entity deploy-requests`, sbCode);
      },
      close: async () => undefined,
    },
  });
  let err: unknown;
  try {
    await sender.send({ body: 1, messageId: 'k', sessionId: 'uat' });
  } catch (e) {
    err = e;
  }
  expect(errorCode(err)).toBe(code);
  expect(isRetryable(err)).toBe(retryable);
  expect((err as Error).message).toContain(sbCode);
  expect((err as Error).message).not.toContain('abcdefSECRET');
});

test('a retryable flag on any error wins; PipelineErrors pass through; plain errors are rejections', () => {
  expect(
    errorCode(mapServiceBusError(Object.assign(new Error('socket hang up'), { retryable: true }), 'q')),
  ).toBe('QUEUE.UNAVAILABLE');
  const pe = new PipelineError('QUEUE.REJECTED', 'x');
  expect(mapServiceBusError(pe, 'q')).toBe(pe);
  expect(errorCode(mapServiceBusError('weird', 'q'))).toBe('QUEUE.REJECTED');
});

test('validation happens before the SDK is called', async () => {
  let calls = 0;
  const sender = new AzureDeployQueueSender({
    fullyQualifiedNamespace: 'unused.servicebus.windows.net',
    queueName: 'deploy-requests',
    sender: { sendMessages: async () => void calls++, close: async () => undefined },
  });
  await expect(sender.send({ body: 1, messageId: 'k', sessionId: '' })).rejects.toThrow(
    /QUEUE.REJECTED.*sessionId/,
  );
  expect(calls).toBe(0);
});
