import { DynamicModule, Global, Module } from '@nestjs/common';
import { ApiKeyRepository } from './api-key.repository';
import { ApiKeyService } from './api-key.service';
import { AUTH_OPTIONS, type AuthOptions } from './auth.options';

@Global()
@Module({})
export class AuthModule {
  static forRoot(opts: AuthOptions): DynamicModule {
    return {
      module: AuthModule,
      providers: [{ provide: AUTH_OPTIONS, useValue: opts }, ApiKeyRepository, ApiKeyService],
      exports: [ApiKeyService],
    };
  }
}
