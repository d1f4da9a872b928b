<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="ko_KR">
<context>
    <name>ApiServerSettingsBox</name>
    <message>
        <source>Other devices need an API key: type one or press Generate.</source>
        <translation>다른 기기에서 접속하려면 API 키가 필요합니다. 직접 입력하거나 생성을 누르세요.</translation>
    </message>
    <message>
        <source>Local API server</source>
        <translation>로컬 API 서버</translation>
    </message>
    <message>
        <source>Serve the loaded model to other programs (OpenAI-compatible API)</source>
        <translation>불러온 모델을 다른 프로그램에 제공(OpenAI 호환 API)</translation>
    </message>
    <message>
        <source>Port</source>
        <translation>포트</translation>
    </message>
    <message>
        <source>Allow other devices on the network</source>
        <translation>네트워크의 다른 기기 허용</translation>
    </message>
    <message>
        <source>Off: only programs on this computer can connect (127.0.0.1).</source>
        <translation>끄면 이 컴퓨터의 프로그램만 접속할 수 있습니다(127.0.0.1).</translation>
    </message>
    <message>
        <source>API key</source>
        <translation>API 키</translation>
    </message>
    <message>
        <source>None (this computer only)</source>
        <translation>없음(이 컴퓨터 전용)</translation>
    </message>
    <message>
        <source>Generate</source>
        <translation>생성</translation>
    </message>
    <message>
        <source>Copy address</source>
        <translation>주소 복사</translation>
    </message>
    <message>
        <source>Apply</source>
        <translation>적용</translation>
    </message>
    <message>
        <source>Press Apply to use these settings.</source>
        <translation>이 설정을 쓰려면 적용을 누르세요.</translation>
    </message>
    <message>
        <source>Serving at %1</source>
        <translation>%1에서 제공 중</translation>
    </message>
    <message>
        <source>Not serving: %1</source>
        <translation>제공하지 않음: %1</translation>
    </message>
    <message>
        <source>Starts when a model on this computer is loaded.</source>
        <translation>이 컴퓨터의 모델을 불러오면 시작합니다.</translation>
    </message>
    <message>
        <source>Off.</source>
        <translation>꺼짐.</translation>
    </message>
</context>
<context>
    <name>ApiServerSwitch</name>
    <message>
        <source>The local API server serves models on this computer only.</source>
        <translation>로컬 API 서버는 이 컴퓨터의 모델만 제공합니다.</translation>
    </message>
</context>
<context>
    <name>ChatController</name>
    <message>
        <source>No model is loaded: open one with File › Models and remote servers…</source>
        <translation>불러온 모델이 없습니다. 파일 › 모델 및 원격 서버…에서 모델을 여세요.</translation>
    </message>
    <message>
        <source>New chat</source>
        <translation>새 대화</translation>
    </message>
    <message>
        <source>The message will be sent when the model is ready.</source>
        <translation>모델이 준비되면 메시지를 보냅니다.</translation>
    </message>
    <message>
        <source>Summarizing the conversation…</source>
        <translation>대화를 요약하는 중…</translation>
    </message>
    <message>
        <source>A new chat starts from the summary (its system prompt, in the conversation settings).</source>
        <translation>요약으로 새 대화를 시작합니다(요약은 대화 설정의 시스템 프롬프트에 있습니다).</translation>
    </message>
    <message>
        <source>Busy: answering an API request. Your message is sent as soon as it is done.</source>
        <translation>API 요청에 답하는 중입니다. 끝나는 대로 메시지를 보냅니다.</translation>
    </message>
    <message>
        <source>The model could not be loaded, so the message was not sent.</source>
        <translation>모델을 불러오지 못해 메시지를 보내지 않았습니다.</translation>
    </message>
</context>
<context>
    <name>ChatPage</name>
    <message>
        <source>Conversation settings</source>
        <translation>대화 설정</translation>
    </message>
    <message>
        <source>Show or hide the conversation list (Ctrl+B)</source>
        <translation>대화 목록 보이기/숨기기 (Ctrl+B)</translation>
    </message>
    <message>
        <source>Editing a message: sending creates a new branch.</source>
        <translation>메시지를 수정하는 중입니다. 보내면 새 갈래로 저장됩니다.</translation>
    </message>
    <message>
        <source>Cancel editing</source>
        <translation>수정 취소</translation>
    </message>
    <message>
        <source>Type a message. Enter sends, Shift+Enter adds a line.</source>
        <translation>메시지를 입력하세요. Enter로 보내고 Shift+Enter로 줄을 바꿉니다.</translation>
    </message>
    <message>
        <source>Stop</source>
        <translation>중지</translation>
    </message>
    <message>
        <source>Send</source>
        <translation>보내기</translation>
    </message>
    <message>
        <source>Stop generating (Esc)</source>
        <translation>답변 생성 중지 (Esc)</translation>
    </message>
    <message>
        <source>Send (Enter)</source>
        <translation>보내기 (Enter)</translation>
    </message>
</context>
<context>
    <name>ChatStatusBar</name>
    <message>
        <source>Loading %1…</source>
        <translation>%1 불러오는 중…</translation>
    </message>
    <message>
        <source>No model loaded</source>
        <translation>불러온 모델 없음</translation>
    </message>
    <message>
        <source>API: starting…</source>
        <translation>API: 시작하는 중…</translation>
    </message>
    <message>
        <source>API %1 · answering a request</source>
        <translation>API %1 · 요청에 답하는 중</translation>
    </message>
    <message>
        <source>API %1</source>
        <translation>API %1</translation>
    </message>
    <message>
        <source>The local API server: other programs use the loaded model at this OpenAI-compatible address.</source>
        <translation>로컬 API 서버: 다른 프로그램이 이 OpenAI 호환 주소로 불러온 모델을 씁니다.</translation>
    </message>
    <message>
        <source>GPU: %1, %2/%3 layers</source>
        <translation>GPU: %1, %2/%3개 레이어</translation>
    </message>
    <message>
        <source>Remote server</source>
        <translation>원격 서버</translation>
    </message>
    <message>
        <source>1 thread</source>
        <translation>스레드 1개</translation>
    </message>
    <message>
        <source>%1 threads</source>
        <translation>스레드 %1개</translation>
    </message>
    <message>
        <source>CPU, %1 (no NVIDIA GPU found)</source>
        <translation>CPU, %1 (NVIDIA GPU 없음)</translation>
    </message>
    <message>
        <source>CPU, %1 (GPU offload turned off in the settings)</source>
        <translation>CPU, %1 (설정에서 GPU 사용을 껐습니다)</translation>
    </message>
    <message>
        <source>CPU, %1: GPU offload is not available; hover for why and what to do</source>
        <translation>CPU, %1: GPU 가속을 쓸 수 없습니다. 이유와 해결 방법은 마우스를 올려 확인하세요</translation>
    </message>
    <message>
        <source>CPU, %1: the model did not load on the GPU; hover for the reason</source>
        <translation>CPU, %1: GPU에서 모델을 불러오지 못했습니다. 이유는 마우스를 올려 확인하세요</translation>
    </message>
    <message>
        <source>CPU, %1 (the GPU was not used)</source>
        <translation>CPU, %1 (GPU를 사용하지 않음)</translation>
    </message>
    <message>
        <source>CPU, %1</source>
        <translation>CPU, %1</translation>
    </message>
    <message>
        <source>%1 tokens/s</source>
        <translation>초당 %1토큰</translation>
    </message>
    <message>
        <source>context %1/%2</source>
        <translation>컨텍스트 %1/%2</translation>
    </message>
</context>
<context>
    <name>ChatView</name>
    <message>
        <source>Copy</source>
        <translation>복사</translation>
    </message>
</context>
<context>
    <name>ConversationList</name>
    <message>
        <source>Stop the reply before deleting this conversation.</source>
        <translation>이 대화를 삭제하려면 먼저 답변 생성을 멈추세요.</translation>
    </message>
</context>
<context>
    <name>ConversationSettingsDialog</name>
    <message>
        <source>Conversation settings</source>
        <translation>대화 설정</translation>
    </message>
    <message>
        <source>System prompt</source>
        <translation>시스템 프롬프트</translation>
    </message>
    <message>
        <source>Chat template</source>
        <translation>채팅 템플릿</translation>
    </message>
    <message>
        <source>Temperature</source>
        <translation>온도(temperature)</translation>
    </message>
    <message>
        <source>Top-p</source>
        <translation>Top-p 샘플링</translation>
    </message>
    <message>
        <source>Top-k</source>
        <translation>Top-k 샘플링</translation>
    </message>
    <message>
        <source>Repetition penalty</source>
        <translation>반복 억제</translation>
    </message>
    <message>
        <source>Maximum reply length (tokens)</source>
        <translation>최대 답변 길이(토큰)</translation>
    </message>
    <message>
        <source>Automatic (from the GGUF file)</source>
        <translation>자동 (GGUF 파일 기준)</translation>
    </message>
    <message>
        <source>Llama-2 Bllossom</source>
        <translation>Llama-2 Bllossom 형식</translation>
    </message>
    <message>
        <source>Llama-3</source>
        <translation>Llama-3 형식</translation>
    </message>
    <message>
        <source>ChatML (Qwen, SmolLM)</source>
        <translation>ChatML 형식 (Qwen, SmolLM)</translation>
    </message>
    <message>
        <source>Gemma</source>
        <translation>Gemma 형식</translation>
    </message>
    <message>
        <source>Always the GGUF file's own template</source>
        <translation>항상 GGUF 파일 자체의 템플릿</translation>
    </message>
    <message>
        <source>Temperature must be 0 or more.</source>
        <translation>Temperature는 0 이상이어야 합니다.</translation>
    </message>
    <message>
        <source>Top-p must be above 0 and at most 1.</source>
        <translation>Top-p는 0보다 크고 1 이하여야 합니다.</translation>
    </message>
    <message>
        <source>Top-k must be 0 (all tokens) or more.</source>
        <translation>Top-k는 0(모든 토큰) 이상이어야 합니다.</translation>
    </message>
    <message>
        <source>The repetition penalty must be above 0.</source>
        <translation>반복 페널티는 0보다 커야 합니다.</translation>
    </message>
    <message>
        <source>The maximum reply length must be between 1 and the context size (%1).</source>
        <translation>최대 답변 길이는 1 이상, 컨텍스트 크기(%1) 이하여야 합니다.</translation>
    </message>
</context>
<context>
    <name>ConvertDialog</name>
    <message>
        <source>Convert a Hugging Face model</source>
        <translation>Hugging Face 모델 변환</translation>
    </message>
    <message>
        <source>Checkpoint folder or hub id</source>
        <translation>체크포인트 폴더 또는 허브 ID</translation>
    </message>
    <message>
        <source>a folder, or e.g. MLP-KTLim/llama-3-Korean-Bllossom-8B</source>
        <translation>폴더 경로 또는 예: MLP-KTLim/llama-3-Korean-Bllossom-8B</translation>
    </message>
    <message>
        <source>Browse…</source>
        <translation>찾아보기…</translation>
    </message>
    <message>
        <source>Save as</source>
        <translation>저장 위치</translation>
    </message>
    <message>
        <source>Quantization</source>
        <translation>양자화</translation>
    </message>
    <message>
        <source>Verify the result against the original</source>
        <translation>변환 결과를 원본과 비교해 검증</translation>
    </message>
    <message>
        <source>Convert</source>
        <translation>변환</translation>
    </message>
    <message>
        <source>Cancel conversion</source>
        <translation>변환 취소</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>닫기</translation>
    </message>
    <message>
        <source>Choose the checkpoint folder</source>
        <translation>체크포인트 폴더 선택</translation>
    </message>
    <message>
        <source>Starting…</source>
        <translation>시작하는 중…</translation>
    </message>
    <message>
        <source>Cancelling…</source>
        <translation>취소하는 중…</translation>
    </message>
    <message>
        <source>Downloading</source>
        <translation>다운로드 중</translation>
    </message>
    <message>
        <source>Converting</source>
        <translation>변환 중</translation>
    </message>
    <message>
        <source>Quantizing</source>
        <translation>양자화 중</translation>
    </message>
    <message>
        <source>Verifying</source>
        <translation>확인 중</translation>
    </message>
    <message>
        <source>about %1 s left</source>
        <translation>약 %1초 남음</translation>
    </message>
    <message>
        <source>Verification was cancelled, so it was not checked against the checkpoint.</source>
        <translation>검증을 취소했으므로 원본 체크포인트와 비교해 확인하지 않았습니다.</translation>
    </message>
    <message>
        <source>Done.</source>
        <translation>완료했습니다.</translation>
    </message>
    <message>
        <source>Stop the conversion?</source>
        <translation>변환을 멈출까요?</translation>
    </message>
    <message>
        <source>The conversion is still running. Stop it and delete the partial file?</source>
        <translation>변환이 아직 진행 중입니다. 멈추고 만들다 만 파일을 삭제할까요?</translation>
    </message>
    <message>
        <source>Saved %1</source>
        <translation>%1에 저장했습니다</translation>
    </message>
    <message>
        <source>Verification report:</source>
        <translation>검증 보고서:</translation>
    </message>
    <message>
        <source>Conversion cancelled; nothing was written.</source>
        <translation>변환을 취소했습니다. 아무 파일도 만들지 않았습니다.</translation>
    </message>
</context>
<context>
    <name>Errors</name>
    <message>
        <source>That input cannot be used.</source>
        <translation>입력한 내용을 사용할 수 없습니다.</translation>
    </message>
    <message>
        <source>Correct it as described, then try again.</source>
        <translation>설명에 따라 고친 뒤 다시 시도하세요.</translation>
    </message>
    <message>
        <source>A setting is outside its allowed range.</source>
        <translation>설정 값이 허용 범위를 벗어났습니다.</translation>
    </message>
    <message>
        <source>Change the value as described, then save again.</source>
        <translation>설명에 따라 값을 바꾼 뒤 다시 저장하세요.</translation>
    </message>
    <message>
        <source>The file could not be found.</source>
        <translation>파일을 찾을 수 없습니다.</translation>
    </message>
    <message>
        <source>Check that it still exists, or choose another file.</source>
        <translation>파일이 아직 있는지 확인하거나 다른 파일을 고르세요.</translation>
    </message>
    <message>
        <source>The file could not be read.</source>
        <translation>파일을 읽을 수 없습니다.</translation>
    </message>
    <message>
        <source>Check that you may read it and that the drive is connected.</source>
        <translation>읽기 권한이 있는지, 드라이브가 연결되어 있는지 확인하세요.</translation>
    </message>
    <message>
        <source>The text is not valid UTF-8.</source>
        <translation>텍스트가 올바른 UTF-8이 아닙니다.</translation>
    </message>
    <message>
        <source>Convert it to UTF-8 (for example from EUC-KR), then try again.</source>
        <translation>UTF-8로 변환(예: EUC-KR에서)한 뒤 다시 시도하세요.</translation>
    </message>
    <message>
        <source>The message is too long for this model's context.</source>
        <translation>메시지가 이 모델의 컨텍스트에 비해 너무 깁니다.</translation>
    </message>
    <message>
        <source>Shorten it, or raise the context size in the model settings. Nothing was saved.</source>
        <translation>메시지를 줄이거나 모델 설정에서 컨텍스트 크기를 늘리세요. 아무것도 저장되지 않았습니다.</translation>
    </message>
    <message>
        <source>There is nothing to reply to.</source>
        <translation>답할 내용이 없습니다.</translation>
    </message>
    <message>
        <source>Type a message first.</source>
        <translation>먼저 메시지를 입력하세요.</translation>
    </message>
    <message>
        <source>This checkpoint cannot be converted.</source>
        <translation>이 체크포인트는 변환할 수 없습니다.</translation>
    </message>
    <message>
        <source>Choose a folder with a Llama-based Hugging Face model (config.json and weights).</source>
        <translation>Llama 기반 Hugging Face 모델 폴더(config.json과 가중치 파일 포함)를 고르세요.</translation>
    </message>
    <message>
        <source>This kind of model cannot be converted yet.</source>
        <translation>이 종류의 모델은 아직 변환할 수 없습니다.</translation>
    </message>
    <message>
        <source>Look for a ready-made GGUF of it, or choose a Llama-based model.</source>
        <translation>이미 만들어진 GGUF를 찾거나 Llama 기반 모델을 고르세요.</translation>
    </message>
    <message>
        <source>The tokenizer of this checkpoint is missing or damaged.</source>
        <translation>이 체크포인트의 토크나이저가 없거나 손상되었습니다.</translation>
    </message>
    <message>
        <source>Make sure the tokenizer files are in the checkpoint folder.</source>
        <translation>토크나이저 파일이 체크포인트 폴더에 있는지 확인하세요.</translation>
    </message>
    <message>
        <source>llama.cpp's quantizer failed.</source>
        <translation>llama.cpp 양자화기가 실패했습니다.</translation>
    </message>
    <message>
        <source>Try another quantization type, or convert to F16 first.</source>
        <translation>다른 양자화 형식을 고르거나 먼저 F16으로 변환해 보세요.</translation>
    </message>
    <message>
        <source>Verification is not available in this installation.</source>
        <translation>이 설치본에서는 검증을 사용할 수 없습니다.</translation>
    </message>
    <message>
        <source>Convert without verification, or use the developer install.</source>
        <translation>검증 없이 변환하거나 개발자용 설치본을 사용하세요.</translation>
    </message>
    <message>
        <source>The converted model did not pass verification.</source>
        <translation>변환한 모델이 검증을 통과하지 못했습니다.</translation>
    </message>
    <message>
        <source>Convert again; if it fails again, report the details.</source>
        <translation>다시 변환해 보고, 또 실패하면 자세한 내용을 알려 주세요.</translation>
    </message>
    <message>
        <source>No model is loaded.</source>
        <translation>불러온 모델이 없습니다.</translation>
    </message>
    <message>
        <source>Open a GGUF file, download a model or add a remote server first.</source>
        <translation>먼저 GGUF 파일을 열거나, 모델을 내려받거나, 원격 서버를 추가하세요.</translation>
    </message>
    <message>
        <source>The model file is missing.</source>
        <translation>모델 파일이 없습니다.</translation>
    </message>
    <message>
        <source>It was moved or deleted: open it from its new place.</source>
        <translation>파일이 옮겨졌거나 삭제되었습니다. 새 위치에서 다시 여세요.</translation>
    </message>
    <message>
        <source>This model file is damaged or is not a GGUF file.</source>
        <translation>모델 파일이 손상되었거나 GGUF 파일이 아닙니다.</translation>
    </message>
    <message>
        <source>Download or convert the model again, then open the new file.</source>
        <translation>모델을 다시 내려받거나 변환한 뒤 새 파일을 여세요.</translation>
    </message>
    <message>
        <source>This model's architecture is not supported.</source>
        <translation>이 모델의 구조는 지원되지 않습니다.</translation>
    </message>
    <message>
        <source>Choose another model, or update Bllossom.</source>
        <translation>다른 모델을 고르거나 Bllossom을 업데이트하세요.</translation>
    </message>
    <message>
        <source>The model could not be loaded.</source>
        <translation>모델을 불러오지 못했습니다.</translation>
    </message>
    <message>
        <source>Check that the file is complete and that there is enough free memory.</source>
        <translation>파일이 온전한지, 남은 메모리가 충분한지 확인하세요.</translation>
    </message>
    <message>
        <source>There is not enough memory for this model.</source>
        <translation>이 모델을 실행할 메모리가 부족합니다.</translation>
    </message>
    <message>
        <source>Close other programs, lower the context size, or use a smaller quantization such as Q4_K_M.</source>
        <translation>다른 프로그램을 닫거나, 컨텍스트 크기를 줄이거나, Q4_K_M 같은 더 작은 양자화를 사용하세요.</translation>
    </message>
    <message>
        <source>The model could not use the graphics card.</source>
        <translation>모델이 그래픽 카드를 사용하지 못했습니다.</translation>
    </message>
    <message>
        <source>It runs on the CPU instead; see the status bar for the reason.</source>
        <translation>대신 CPU에서 실행됩니다. 이유는 상태 표시줄에서 볼 수 있습니다.</translation>
    </message>
    <message>
        <source>The model is still answering another message.</source>
        <translation>모델이 아직 다른 메시지에 답하는 중입니다.</translation>
    </message>
    <message>
        <source>Wait for it to finish, or stop it first.</source>
        <translation>끝날 때까지 기다리거나 먼저 멈추세요.</translation>
    </message>
    <message>
        <source>The chat template of this model cannot be used.</source>
        <translation>이 모델의 채팅 템플릿을 사용할 수 없습니다.</translation>
    </message>
    <message>
        <source>Choose another template in the conversation settings.</source>
        <translation>대화 설정에서 다른 템플릿을 고르세요.</translation>
    </message>
    <message>
        <source>The chat template of this model is unsafe or too costly.</source>
        <translation>이 모델의 채팅 템플릿이 안전하지 않거나 너무 많은 자원을 씁니다.</translation>
    </message>
    <message>
        <source>Choose a built-in template in the conversation settings.</source>
        <translation>대화 설정에서 내장 템플릿을 고르세요.</translation>
    </message>
    <message>
        <source>Your conversations could not be saved or read.</source>
        <translation>대화를 저장하거나 읽지 못했습니다.</translation>
    </message>
    <message>
        <source>Check that the data folder is writable and not damaged.</source>
        <translation>데이터 폴더에 쓰기 권한이 있는지, 손상되지 않았는지 확인하세요.</translation>
    </message>
    <message>
        <source>The disk is full.</source>
        <translation>디스크 공간이 가득 찼습니다.</translation>
    </message>
    <message>
        <source>Free some space, then try again. Nothing you wrote was lost.</source>
        <translation>공간을 확보한 뒤 다시 시도하세요. 작성한 내용은 그대로 남아 있습니다.</translation>
    </message>
    <message>
        <source>The conversation database is busy.</source>
        <translation>대화 데이터베이스가 사용 중입니다.</translation>
    </message>
    <message>
        <source>Another Bllossom program is writing to it; try again in a moment.</source>
        <translation>다른 Bllossom 프로그램이 쓰는 중입니다. 잠시 뒤 다시 시도하세요.</translation>
    </message>
    <message>
        <source>The conversation database is damaged.</source>
        <translation>대화 데이터베이스가 손상되었습니다.</translation>
    </message>
    <message>
        <source>Restore it from a backup, or move it aside to start a new one.</source>
        <translation>백업에서 복원하거나, 다른 곳으로 옮겨 두고 새로 시작하세요.</translation>
    </message>
    <message>
        <source>The conversations were saved by a newer Bllossom.</source>
        <translation>더 새로운 버전의 Bllossom이 저장한 대화입니다.</translation>
    </message>
    <message>
        <source>Update Bllossom to open them.</source>
        <translation>열려면 Bllossom을 업데이트하세요.</translation>
    </message>
    <message>
        <source>The data folder cannot be written to.</source>
        <translation>데이터 폴더에 쓸 수 없습니다.</translation>
    </message>
    <message>
        <source>Check its permissions, or set BLLOSSOM_HOME to a writable folder.</source>
        <translation>권한을 확인하거나 BLLOSSOM_HOME을 쓰기 가능한 폴더로 지정하세요.</translation>
    </message>
    <message>
        <source>The file already exists.</source>
        <translation>파일이 이미 있습니다.</translation>
    </message>
    <message>
        <source>Choose another name, or confirm replacing it.</source>
        <translation>다른 이름을 고르거나 바꾸기를 확인하세요.</translation>
    </message>
    <message>
        <source>The file could not be imported.</source>
        <translation>파일을 가져올 수 없습니다.</translation>
    </message>
    <message>
        <source>Choose a .json file exported by Bllossom.</source>
        <translation>Bllossom에서 내보낸 .json 파일을 고르세요.</translation>
    </message>
    <message>
        <source>Could not connect to the server.</source>
        <translation>서버에 연결할 수 없습니다.</translation>
    </message>
    <message>
        <source>Check the address and that the server is running.</source>
        <translation>주소를 확인하고 서버가 실행 중인지 확인하세요.</translation>
    </message>
    <message>
        <source>The server did not answer properly.</source>
        <translation>서버가 제대로 응답하지 않았습니다.</translation>
    </message>
    <message>
        <source>Check the server's log, or try again later.</source>
        <translation>서버 로그를 확인하거나 나중에 다시 시도하세요.</translation>
    </message>
    <message>
        <source>The reply stopped midway.</source>
        <translation>답변이 도중에 멈췄습니다.</translation>
    </message>
    <message>
        <source>What arrived is kept; generate the reply again to retry.</source>
        <translation>받은 부분은 보관되었습니다. 다시 생성해 보세요.</translation>
    </message>
    <message>
        <source>The server refused the API key.</source>
        <translation>서버가 API 키를 거부했습니다.</translation>
    </message>
    <message>
        <source>Check the API key in Models and remote servers.</source>
        <translation>모델 및 원격 서버에서 API 키를 확인하세요.</translation>
    </message>
    <message>
        <source>An API key is required.</source>
        <translation>API 키가 필요합니다.</translation>
    </message>
    <message>
        <source>Set an API key before allowing other devices to connect.</source>
        <translation>다른 기기의 연결을 허용하기 전에 API 키를 정하세요.</translation>
    </message>
    <message>
        <source>The port is already in use.</source>
        <translation>포트가 이미 사용 중입니다.</translation>
    </message>
    <message>
        <source>Choose another port, or stop the program using it.</source>
        <translation>다른 포트를 고르거나 그 포트를 쓰는 프로그램을 멈추세요.</translation>
    </message>
    <message>
        <source>You are offline.</source>
        <translation>오프라인 상태입니다.</translation>
    </message>
    <message>
        <source>Connect to the internet, or use a model already on this computer.</source>
        <translation>인터넷에 연결하거나 이 컴퓨터에 이미 있는 모델을 사용하세요.</translation>
    </message>
    <message>
        <source>The download failed.</source>
        <translation>내려받기에 실패했습니다.</translation>
    </message>
    <message>
        <source>Check your connection and try again; it resumes where it stopped.</source>
        <translation>연결을 확인하고 다시 시도하세요. 멈춘 곳부터 이어서 받습니다.</translation>
    </message>
    <message>
        <source>The model was not found on Hugging Face.</source>
        <translation>Hugging Face에서 모델을 찾을 수 없습니다.</translation>
    </message>
    <message>
        <source>Check the name (ORGANISATION/NAME) and the revision.</source>
        <translation>이름(조직/이름)과 리비전을 확인하세요.</translation>
    </message>
    <message>
        <source>This model requires accepting its licence.</source>
        <translation>이 모델은 라이선스 동의가 필요합니다.</translation>
    </message>
    <message>
        <source>Accept the licence on the model's page, then set HF_TOKEN or log in with 'hf auth login'.</source>
        <translation>모델 페이지에서 라이선스에 동의한 뒤 HF_TOKEN을 설정하거나 'hf auth login'으로 로그인하세요.</translation>
    </message>
    <message>
        <source>That file is not in the model's repository.</source>
        <translation>모델 저장소에 그 파일이 없습니다.</translation>
    </message>
    <message>
        <source>Check the file name, or choose a quantization the list offers.</source>
        <translation>파일 이름을 확인하거나 목록에 있는 양자화를 고르세요.</translation>
    </message>
    <message>
        <source>The download was interrupted.</source>
        <translation>내려받기가 중단되었습니다.</translation>
    </message>
    <message>
        <source>Start it again: it continues from where it stopped.</source>
        <translation>다시 시작하세요. 멈춘 곳부터 이어서 받습니다.</translation>
    </message>
    <message>
        <source>There is no model by that name in the catalog.</source>
        <translation>카탈로그에 그런 이름의 모델이 없습니다.</translation>
    </message>
    <message>
        <source>Choose one from the list, or give a Hugging Face id (ORG/NAME).</source>
        <translation>목록에서 고르거나 Hugging Face ID(조직/이름)를 입력하세요.</translation>
    </message>
    <message>
        <source>That quantization is not offered for this model.</source>
        <translation>이 모델에는 그 양자화가 없습니다.</translation>
    </message>
    <message>
        <source>Choose one of the quantizations listed.</source>
        <translation>목록에 있는 양자화 중 하나를 고르세요.</translation>
    </message>
    <message>
        <source>The downloaded file is damaged.</source>
        <translation>내려받은 파일이 손상되었습니다.</translation>
    </message>
    <message>
        <source>It was deleted; download it again.</source>
        <translation>파일을 삭제했습니다. 다시 내려받으세요.</translation>
    </message>
    <message>
        <source>Stopped.</source>
        <translation>중지됨.</translation>
    </message>
    <message>
        <source>Nothing was left half-written.</source>
        <translation>반쯤 쓰다 만 파일은 남지 않았습니다.</translation>
    </message>
    <message>
        <source>Something went wrong.</source>
        <translation>문제가 발생했습니다.</translation>
    </message>
    <message>
        <source>Details are below.</source>
        <translation>자세한 내용은 아래에 있습니다.</translation>
    </message>
    <message>
        <source>An unexpected error occurred.</source>
        <translation>예기치 않은 오류가 발생했습니다.</translation>
    </message>
    <message>
        <source>This is a bug in Bllossom; please report it with the details below.</source>
        <translation>블라썸의 버그입니다. 아래 내용을 함께 알려 주세요.</translation>
    </message>
    <message>
        <source>Could not connect to %1.</source>
        <translation>%1에 연결할 수 없습니다.</translation>
    </message>
    <message>
        <source>The server at %1 refused the API key.</source>
        <translation>%1 서버가 API 키를 거부했습니다.</translation>
    </message>
    <message>
        <source>The server at %1 did not answer as an OpenAI-compatible API.</source>
        <translation>%1 서버가 OpenAI 호환 API로 응답하지 않았습니다.</translation>
    </message>
    <message>
        <source>Bllossom</source>
        <translation>블라썸 Bllossom</translation>
    </message>
</context>
<context>
    <name>FileActions</name>
    <message>
        <source>Markdown (*.md)</source>
        <translation>마크다운 문서 (*.md)</translation>
    </message>
    <message>
        <source>JSON (*.json)</source>
        <translation>JSON 파일 (*.json)</translation>
    </message>
    <message>
        <source>Replace the file?</source>
        <translation>파일을 바꿀까요?</translation>
    </message>
    <message>
        <source>%1 already exists. Replace it?</source>
        <translation>%1 파일이 이미 있습니다. 바꿀까요?</translation>
    </message>
    <message>
        <source>Bllossom export (*.json)</source>
        <translation>Bllossom 내보내기 파일 (*.json)</translation>
    </message>
    <message>
        <source>Open a conversation to export it.</source>
        <translation>내보낼 대화를 먼저 여세요.</translation>
    </message>
    <message>
        <source>Export conversation</source>
        <translation>대화 내보내기</translation>
    </message>
    <message>
        <source>conversation</source>
        <translation>대화</translation>
    </message>
    <message>
        <source>Export all conversations</source>
        <translation>모든 대화 내보내기</translation>
    </message>
    <message>
        <source>bllossom-conversations</source>
        <translation>bllossom-conversations</translation>
    </message>
    <message>
        <source>Choose a folder you can write to, then export again.</source>
        <translation>쓰기 권한이 있는 폴더를 골라 다시 내보내세요.</translation>
    </message>
    <message>
        <source>The export could not be written.</source>
        <translation>내보내기 파일을 쓰지 못했습니다.</translation>
    </message>
    <message>
        <source>Exported to %1</source>
        <translation>%1에 내보냈습니다</translation>
    </message>
    <message>
        <source>Import conversations</source>
        <translation>대화 가져오기</translation>
    </message>
    <message>
        <source>The file could not be imported.</source>
        <translation>파일을 가져올 수 없습니다.</translation>
    </message>
    <message>
        <source>Choose a .json file exported by Bllossom.</source>
        <translation>Bllossom에서 내보낸 .json 파일을 고르세요.</translation>
    </message>
    <message>
        <source>Imported %1 conversation(s).</source>
        <translation>대화 %1개를 가져왔습니다.</translation>
    </message>
</context>
<context>
    <name>GetModels</name>
    <message>
        <source>Fits on your GPU</source>
        <translation>GPU에 들어감</translation>
    </message>
    <message>
        <source>Partly on your GPU</source>
        <translation>일부만 GPU에서 실행</translation>
    </message>
    <message>
        <source>Runs on your CPU</source>
        <translation>CPU에서 실행</translation>
    </message>
    <message>
        <source>Too big for this computer</source>
        <translation>이 컴퓨터에는 너무 큼</translation>
    </message>
    <message>
        <source>Not supported</source>
        <translation>지원되지 않음</translation>
    </message>
    <message>
        <source>Fit unknown</source>
        <translation>적합성 알 수 없음</translation>
    </message>
    <message>
        <source>runs on your GPU</source>
        <translation>내 GPU에서 실행</translation>
    </message>
    <message>
        <source>runs partly on your GPU</source>
        <translation>일부는 내 GPU에서 실행</translation>
    </message>
    <message>
        <source>runs on your CPU</source>
        <translation>내 CPU에서 실행</translation>
    </message>
    <message>
        <source>too big for this computer</source>
        <translation>이 컴퓨터에는 너무 큼</translation>
    </message>
    <message>
        <source>needs %1 of memory; %2 has %3 free</source>
        <translation>메모리 %1 필요, %2의 여유 메모리 %3</translation>
    </message>
    <message>
        <source>needs %1 of memory: %2% on %3, the rest in RAM</source>
        <translation>메모리 %1 필요: %2%는 %3에, 나머지는 RAM에 올라감</translation>
    </message>
    <message>
        <source>needs %1 of memory; %2 of RAM available</source>
        <translation>메모리 %1 필요, 사용 가능한 RAM %2</translation>
    </message>
    <message>
        <source>Looking up the files…</source>
        <translation>파일을 찾는 중…</translation>
    </message>
    <message>
        <source>Downloading</source>
        <translation>다운로드 중</translation>
    </message>
    <message>
        <source>Verifying</source>
        <translation>확인 중</translation>
    </message>
    <message>
        <source>Converting</source>
        <translation>변환 중</translation>
    </message>
    <message>
        <source>Quantizing</source>
        <translation>양자화 중</translation>
    </message>
    <message>
        <source>Checking the tokenizer</source>
        <translation>토크나이저 확인 중</translation>
    </message>
    <message>
        <source>Done</source>
        <translation>완료</translation>
    </message>
    <message>
        <source>Paused</source>
        <translation>일시 정지됨</translation>
    </message>
    <message>
        <source>%1 of %2</source>
        <translation>%2 중 %1</translation>
    </message>
    <message>
        <source>%1 min left</source>
        <translation>%1분 남음</translation>
    </message>
    <message>
        <source>%1 s left</source>
        <translation>%1초 남음</translation>
    </message>
</context>
<context>
    <name>GetModelsDialog</name>
    <message>
        <source>Checking this computer's memory and GPU…</source>
        <translation>이 컴퓨터의 메모리와 GPU를 확인하는 중…</translation>
    </message>
    <message>
        <source>%1 of RAM available</source>
        <translation>사용 가능한 RAM %1</translation>
    </message>
    <message>
        <source>GPU %1 with %2 free</source>
        <translation>GPU %1 (여유 %2)</translation>
    </message>
    <message>
        <source>no GPU Bllossom can use</source>
        <translation>Bllossom이 쓸 수 있는 GPU 없음</translation>
    </message>
    <message>
        <source>estimates for a %1-token context</source>
        <translation>컨텍스트 %1토큰 기준 추정</translation>
    </message>
    <message>
        <source>Get models</source>
        <translation>모델 받기</translation>
    </message>
    <message>
        <source>Bllossom models for this computer</source>
        <translation>이 컴퓨터에 맞는 Bllossom 모델</translation>
    </message>
</context>
<context>
    <name>InputMethod</name>
    <message>
        <source>Korean input is off: fcitx5 cannot reach this app. Turn on fcitx5's IBus Frontend add-on and start the app with QT_IM_MODULE=ibus.</source>
        <translation>한글 입력이 꺼져 있습니다: fcitx5가 이 앱에 연결되지 못합니다. fcitx5의 IBus 프론트엔드 애드온을 켜고 QT_IM_MODULE=ibus로 앱을 실행하세요.</translation>
    </message>
</context>
<context>
    <name>KeyStorage</name>
    <message>
        <source>The key is saved in the system keyring.</source>
        <translation>키는 시스템 키링에 저장됩니다.</translation>
    </message>
    <message>
        <source>No system keyring found: the key is saved in a file readable only by you (settings.json, unencrypted).</source>
        <translation>시스템 키링이 없습니다. 키는 나만 읽을 수 있는 파일(settings.json, 암호화되지 않음)에 저장됩니다.</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>Copied to the clipboard.</source>
        <translation>클립보드에 복사했습니다.</translation>
    </message>
    <message>
        <source>Bllossom</source>
        <translation>블라썸 Bllossom</translation>
    </message>
    <message>
        <source>&amp;File</source>
        <translation>파일(&amp;F)</translation>
    </message>
    <message>
        <source>&amp;Chat</source>
        <translation>대화(&amp;C)</translation>
    </message>
    <message>
        <source>New chat</source>
        <translation>새 대화</translation>
    </message>
    <message>
        <source>Open a GGUF file…</source>
        <translation>GGUF 파일 열기…</translation>
    </message>
    <message>
        <source>Convert a Hugging Face model…</source>
        <translation>Hugging Face 모델 변환…</translation>
    </message>
    <message>
        <source>Models and remote servers…</source>
        <translation>모델 및 원격 서버…</translation>
    </message>
    <message>
        <source>Get models…</source>
        <translation>모델 받기…</translation>
    </message>
    <message>
        <source>Export conversation…</source>
        <translation>대화 내보내기…</translation>
    </message>
    <message>
        <source>Export all conversations…</source>
        <translation>모든 대화 내보내기…</translation>
    </message>
    <message>
        <source>Import conversations…</source>
        <translation>대화 가져오기…</translation>
    </message>
    <message>
        <source>Recently deleted…</source>
        <translation>최근 삭제한 대화…</translation>
    </message>
    <message>
        <source>Settings…</source>
        <translation>설정…</translation>
    </message>
    <message>
        <source>Model settings…</source>
        <translation>모델 설정…</translation>
    </message>
    <message>
        <source>Quit</source>
        <translation>끝내기</translation>
    </message>
    <message>
        <source>Search conversations</source>
        <translation>대화 검색</translation>
    </message>
    <message>
        <source>Conversation settings…</source>
        <translation>대화 설정…</translation>
    </message>
    <message>
        <source>Stop generating</source>
        <translation>답변 생성 중지</translation>
    </message>
    <message>
        <source>Stopping…</source>
        <translation>멈추는 중…</translation>
    </message>
</context>
<context>
    <name>MessageWidget</name>
    <message>
        <source>You</source>
        <translation>나</translation>
    </message>
    <message>
        <source>Assistant</source>
        <translation>어시스턴트</translation>
    </message>
    <message>
        <source>Copy</source>
        <translation>복사</translation>
    </message>
    <message>
        <source>Copy this message</source>
        <translation>이 메시지 복사</translation>
    </message>
    <message>
        <source>Edit</source>
        <translation>수정</translation>
    </message>
    <message>
        <source>Edit and resend as a new branch</source>
        <translation>수정해서 새 갈래로 다시 보내기</translation>
    </message>
    <message>
        <source>Regenerate</source>
        <translation>다시 생성</translation>
    </message>
    <message>
        <source>Write a new version of this reply</source>
        <translation>이 답변의 새 버전 만들기</translation>
    </message>
    <message>
        <source>Previous version</source>
        <translation>이전 버전</translation>
    </message>
    <message>
        <source>Next version</source>
        <translation>다음 버전</translation>
    </message>
</context>
<context>
    <name>ModelDownloads</name>
    <message>
        <source>Unfinished downloads can be resumed: File ▸ Get models…</source>
        <translation>끝나지 않은 다운로드를 이어받을 수 있습니다: 파일 ▸ 모델 받기…</translation>
    </message>
</context>
<context>
    <name>ModelManager</name>
    <message>
        <source>Open a GGUF model</source>
        <translation>GGUF 모델 열기</translation>
    </message>
    <message>
        <source>GGUF models (*.gguf)</source>
        <translation>GGUF 모델 (*.gguf)</translation>
    </message>
    <message>
        <source>This model file has no chat template; using %1, chosen from its vocabulary. If its replies look wrong, choose another in the conversation settings.</source>
        <translation>이 모델 파일에는 채팅 템플릿이 없어 어휘에서 고른 %1 템플릿을 씁니다. 답변이 이상하면 대화 설정에서 다른 템플릿을 고르세요.</translation>
    </message>
    <message>
        <source>Open the new model?</source>
        <translation>새 모델을 열까요?</translation>
    </message>
    <message>
        <source>%1 is ready. Open it now? (The current model is closed.)</source>
        <translation>%1 파일이 준비되었습니다. 지금 열까요? (지금 모델은 닫힙니다.)</translation>
    </message>
</context>
<context>
    <name>ModelRow</name>
    <message>
        <source>No file Bllossom can use.</source>
        <translation>Bllossom이 쓸 수 있는 파일이 없습니다.</translation>
    </message>
    <message>
        <source>converted here from a %1 checkpoint</source>
        <translation>%1 체크포인트를 이 컴퓨터에서 변환</translation>
    </message>
    <message>
        <source>converted here from the checkpoint</source>
        <translation>체크포인트를 이 컴퓨터에서 변환</translation>
    </message>
    <message>
        <source>licence: %1</source>
        <translation>라이선스: %1</translation>
    </message>
    <message>
        <source>(accept it on the model page first)</source>
        <translation>(먼저 모델 페이지에서 동의 필요)</translation>
    </message>
    <message>
        <source>Open</source>
        <translation>열기</translation>
    </message>
    <message>
        <source>Resume</source>
        <translation>이어받기</translation>
    </message>
    <message>
        <source>Try again</source>
        <translation>다시 시도</translation>
    </message>
    <message>
        <source>Convert</source>
        <translation>변환</translation>
    </message>
    <message>
        <source>Download</source>
        <translation>다운로드</translation>
    </message>
    <message>
        <source>Pause</source>
        <translation>일시 정지</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>취소</translation>
    </message>
</context>
<context>
    <name>ModelSettingsDialog</name>
    <message>
        <source>Model settings</source>
        <translation>모델 설정</translation>
    </message>
    <message>
        <source>These apply to local models. Saving reloads the model that is open.</source>
        <translation>내 컴퓨터의 모델에 적용됩니다. 저장하면 열려 있는 모델을 다시 불러옵니다.</translation>
    </message>
    <message>
        <source>Context size (tokens)</source>
        <translation>컨텍스트 크기(토큰)</translation>
    </message>
    <message>
        <source>Layers on the GPU</source>
        <translation>GPU에 올릴 레이어 수</translation>
    </message>
    <message>
        <source>CPU threads</source>
        <translation>CPU 스레드 수</translation>
    </message>
    <message>
        <source>Flash attention</source>
        <translation>플래시 어텐션</translation>
    </message>
    <message>
        <source>KV cache type</source>
        <translation>KV 캐시 형식</translation>
    </message>
    <message>
        <source>Automatic (%1)</source>
        <translation>자동(%1)</translation>
    </message>
    <message>
        <source>Automatic (all that fit)</source>
        <translation>자동(들어가는 만큼 모두)</translation>
    </message>
    <message>
        <source>Automatic (one per core)</source>
        <translation>자동(코어마다 하나)</translation>
    </message>
    <message>
        <source>Use flash attention (needed for q8_0/q4_0)</source>
        <translation>플래시 어텐션 사용(q8_0/q4_0에 필요)</translation>
    </message>
    <message>
        <source>-1 puts every layer on the GPU, 0 none.</source>
        <translation>-1이면 모든 레이어를 GPU에, 0이면 하나도 올리지 않습니다.</translation>
    </message>
    <message>
        <source>A quantized KV cache needs flash attention: turn it on, or choose f16.</source>
        <translation>양자화한 KV 캐시에는 플래시 어텐션이 필요합니다. 켜거나 f16을 고르세요.</translation>
    </message>
</context>
<context>
    <name>ModelsDialog</name>
    <message>
        <source>Models</source>
        <translation>모델</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>이름</translation>
    </message>
    <message>
        <source>Size</source>
        <translation>크기</translation>
    </message>
    <message>
        <source>Quantization</source>
        <translation>양자화</translation>
    </message>
    <message>
        <source>Location</source>
        <translation>위치</translation>
    </message>
    <message>
        <source>Use this model</source>
        <translation>이 모델 사용</translation>
    </message>
    <message>
        <source>Remove from list</source>
        <translation>목록에서 제거</translation>
    </message>
    <message>
        <source>Open a GGUF file…</source>
        <translation>GGUF 파일 열기…</translation>
    </message>
    <message>
        <source>(in use)</source>
        <translation>(사용 중)</translation>
    </message>
    <message>
        <source>remote, key in the keyring</source>
        <translation>원격, 키는 키링에</translation>
    </message>
    <message>
        <source>remote, key in settings.json</source>
        <translation>원격, 키는 settings.json에</translation>
    </message>
    <message>
        <source>remote</source>
        <translation>원격</translation>
    </message>
    <message>
        <source>Remove the model in use?</source>
        <translation>사용 중인 모델을 제거할까요?</translation>
    </message>
    <message>
        <source>%1 is the model in use. Remove it from the list and unload it?</source>
        <translation>%1 모델을 지금 사용하고 있습니다. 목록에서 제거하고 메모리에서 내릴까요?</translation>
    </message>
    <message>
        <source>The file itself is not deleted.</source>
        <translation>파일 자체는 삭제되지 않습니다.</translation>
    </message>
</context>
<context>
    <name>RecentlyDeletedDialog</name>
    <message>
        <source>Recently deleted</source>
        <translation>최근 삭제한 대화</translation>
    </message>
    <message>
        <source>Deleted conversations are kept for %1 days, then erased. Choose the ones to bring back, then press Restore.</source>
        <translation>삭제한 대화는 %1일 동안 보관된 뒤 지워집니다. 되살릴 대화를 고른 뒤 복원을 누르세요.</translation>
    </message>
    <message>
        <source>Untitled conversation</source>
        <translation>제목 없는 대화</translation>
    </message>
    <message>
        <source>The trash is empty.</source>
        <translation>휴지통이 비어 있습니다.</translation>
    </message>
    <message>
        <source>Restore</source>
        <translation>복원</translation>
    </message>
</context>
<context>
    <name>RemoteServerForm</name>
    <message>
        <source>Remote server (OpenAI-compatible)</source>
        <translation>원격 서버 (OpenAI 호환)</translation>
    </message>
    <message>
        <source>Base URL</source>
        <translation>기본 URL</translation>
    </message>
    <message>
        <source>API key</source>
        <translation>API 키</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>모델</translation>
    </message>
    <message>
        <source>optional</source>
        <translation>선택 사항</translation>
    </message>
    <message>
        <source>test the connection to list them</source>
        <translation>연결을 테스트하면 목록이 채워집니다</translation>
    </message>
    <message>
        <source>Test connection</source>
        <translation>연결 테스트</translation>
    </message>
    <message>
        <source>Add and use this server</source>
        <translation>이 서버 추가 후 사용</translation>
    </message>
    <message>
        <source>Connecting to %1…</source>
        <translation>%1에 연결하는 중…</translation>
    </message>
    <message>
        <source>Connected. The server serves one model and does not name it.</source>
        <translation>연결되었습니다. 서버가 이름 없는 모델 하나를 제공합니다.</translation>
    </message>
    <message>
        <source>Connected. The server offers 1 model.</source>
        <translation>연결되었습니다. 서버가 모델 1개를 제공합니다.</translation>
    </message>
    <message>
        <source>Connected. The server offers %1 models: choose one above.</source>
        <translation>연결되었습니다. 서버가 모델 %1개를 제공합니다. 위에서 하나를 고르세요.</translation>
    </message>
</context>
<context>
    <name>ReplyNotes</name>
    <message>
        <source>No reply: %1</source>
        <translation>답변 없음: %1</translation>
    </message>
    <message>
        <source>The reply stopped early: %1</source>
        <translation>답변이 중간에 멈췄습니다: %1</translation>
    </message>
    <message>
        <source>This reply was interrupted.</source>
        <translation>이 답변은 중단되었습니다.</translation>
    </message>
    <message>
        <source>Stopped.</source>
        <translation>중지됨.</translation>
    </message>
    <message>
        <source>Stopped before any text.</source>
        <translation>글이 나오기 전에 중지됨.</translation>
    </message>
    <message>
        <source>The reply reached the length limit.</source>
        <translation>답변이 길이 제한에 도달했습니다.</translation>
    </message>
    <message>
        <source>The model gave an empty reply.</source>
        <translation>모델이 빈 답변을 했습니다.</translation>
    </message>
    <message>
        <source>The oldest %1 messages no longer fit in the %2-token context and were left out of this reply.</source>
        <translation>가장 오래된 메시지 %1개가 %2토큰 컨텍스트에 더 이상 들어가지 않아 이 답변에서 빠졌습니다.</translation>
    </message>
    <message>
        <source>The oldest %1 messages no longer fit in the model's context and were left out of this reply.</source>
        <translation>가장 오래된 메시지 %1개가 모델의 컨텍스트에 더 이상 들어가지 않아 이 답변에서 빠졌습니다.</translation>
    </message>
    <message>
        <source>Continue</source>
        <translation>이어서 쓰기</translation>
    </message>
    <message>
        <source>Write more of this reply</source>
        <translation>이 답변을 이어서 씁니다</translation>
    </message>
    <message>
        <source>Raise the context size…</source>
        <translation>컨텍스트 크기 늘리기…</translation>
    </message>
    <message>
        <source>New chat from a summary</source>
        <translation>요약으로 새 대화</translation>
    </message>
    <message>
        <source>Start a new chat that begins with a summary of this one</source>
        <translation>이 대화의 요약으로 시작하는 새 대화를 엽니다</translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <source>Settings</source>
        <translation>설정</translation>
    </message>
    <message>
        <source>Language</source>
        <translation>언어</translation>
    </message>
    <message>
        <source>Theme</source>
        <translation>테마</translation>
    </message>
    <message>
        <source>System default</source>
        <translation>시스템 설정 따르기</translation>
    </message>
    <message>
        <source>Light</source>
        <translation>밝게</translation>
    </message>
    <message>
        <source>Dark</source>
        <translation>어둡게</translation>
    </message>
</context>
<context>
    <name>Sidebar</name>
    <message>
        <source>New chat</source>
        <translation>새 대화</translation>
    </message>
    <message>
        <source>Start a new conversation (Ctrl+N)</source>
        <translation>새 대화 시작 (Ctrl+N)</translation>
    </message>
    <message>
        <source>Search conversations (Ctrl+F)</source>
        <translation>대화 검색 (Ctrl+F)</translation>
    </message>
    <message>
        <source>Rename</source>
        <translation>이름 바꾸기</translation>
    </message>
    <message>
        <source>Delete</source>
        <translation>삭제</translation>
    </message>
    <message>
        <source>Conversation deleted.</source>
        <translation>대화를 삭제했습니다.</translation>
    </message>
    <message>
        <source>Undo</source>
        <translation>되돌리기</translation>
    </message>
    <message>
        <source>Export…</source>
        <translation>내보내기…</translation>
    </message>
    <message>
        <source>imported</source>
        <translation>가져옴</translation>
    </message>
    <message>
        <source>No matches</source>
        <translation>검색 결과 없음</translation>
    </message>
</context>
<context>
    <name>ThinkingPanel</name>
    <message>
        <source>Thinking…</source>
        <translation>생각하는 중…</translation>
    </message>
    <message>
        <source>Thoughts</source>
        <translation>생각</translation>
    </message>
    <message>
        <source>Thought for %1 s</source>
        <translation>%1초 동안 생각함</translation>
    </message>
    <message>
        <source>Hide the model's thinking</source>
        <translation>모델의 생각 숨기기</translation>
    </message>
    <message>
        <source>Show the model's thinking</source>
        <translation>모델의 생각 보기</translation>
    </message>
</context>
<context>
    <name>WelcomePage</name>
    <message>
        <source>converted here from the official checkpoint</source>
        <translation>공식 체크포인트를 이 컴퓨터에서 변환</translation>
    </message>
    <message>
        <source>Resume: %1</source>
        <translation>이어받기: %1</translation>
    </message>
    <message>
        <source>Try again: %1</source>
        <translation>다시 시도: %1</translation>
    </message>
    <message>
        <source>Open: %1</source>
        <translation>열기: %1</translation>
    </message>
    <message>
        <source>Welcome to Bllossom</source>
        <translation>블라썸에 오신 것을 환영합니다</translation>
    </message>
    <message>
        <source>A private Korean and English assistant that runs on this computer. Choose a model to begin.</source>
        <translation>이 컴퓨터에서 실행되는 한국어·영어 AI 어시스턴트입니다. 대화 내용은 밖으로 나가지 않습니다. 시작하려면 모델을 고르세요.</translation>
    </message>
    <message>
        <source>Recommended for this computer:</source>
        <translation>이 컴퓨터에 추천하는 모델:</translation>
    </message>
    <message>
        <source>Open a GGUF file…</source>
        <translation>GGUF 파일 열기…</translation>
    </message>
    <message>
        <source>Convert a Hugging Face model…</source>
        <translation>Hugging Face 모델 변환…</translation>
    </message>
    <message>
        <source>Browse Bllossom models…</source>
        <translation>Bllossom 모델 둘러보기…</translation>
    </message>
    <message>
        <source>Models and remote servers…</source>
        <translation>모델 및 원격 서버…</translation>
    </message>
</context>
</TS>